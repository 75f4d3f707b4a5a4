from django.urls import path

from . import views

app_name = "federation_login"
urlpatterns = [
    path("educonnect/login", views.educonnect_login, name="educonnect-login"),
    path("educonnect/acs", views.educonnect_acs, name="educonnect-acs"),
    path("educonnect/metadata", views.educonnect_metadata, name="educonnect-metadata"),
    path("educonnect/slo", views.educonnect_slo, name="educonnect-slo"),
    path("franceconnect/login", views.franceconnect_login, name="franceconnect-login"),
    path("franceconnect/callback", views.franceconnect_callback, name="franceconnect-callback"),
    path("franceconnect/unlink", views.franceconnect_unlink, name="franceconnect-unlink"),
]
