from django.urls import path

from . import views

app_name = "account"
urlpatterns = [
    path("", views.account, name="account"),
    path("mot-de-passe", views.change_password, name="password"),
    path("coordonnees", views.change_contact, name="contact"),
    path("sessions/fermer-les-autres", views.end_other_sessions, name="end_other_sessions"),
]
