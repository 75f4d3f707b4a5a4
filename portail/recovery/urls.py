from django.urls import path

from . import views

app_name = "recovery"
urlpatterns = [
    path("help", views.help_page, name="help"),
    path("lost-password", views.lost_password, name="lost_password"),
    path("lost-identifier", views.lost_identifier, name="lost_identifier"),
    path("lost-identifier/details", views.lost_identifier_details, name="lost_identifier_details"),
    # The link of the email; it redirects at once to the token-less "reset/".
    path("reset/<str:token>", views.reset_link, name="reset_link"),
    path("reset/", views.reset, name="reset"),
]
