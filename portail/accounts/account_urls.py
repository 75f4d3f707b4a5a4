from django.urls import path

from . import account_views

app_name = "account"
urlpatterns = [
    path("", account_views.account, name="account"),
    path("mot-de-passe", account_views.change_password, name="password"),
    path("coordonnees", account_views.change_contact, name="contact"),
]
