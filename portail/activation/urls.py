from django.urls import path

from . import views

app_name = "activation"
urlpatterns = [
    path("activation", views.activate, name="activate"),
    # The credentials mail's « Activer mon compte »; redirects at once to the token-less page.
    path("activation/lien/<str:token>", views.activation_link, name="link"),
    path("charte", views.charter, name="charter"),
]
