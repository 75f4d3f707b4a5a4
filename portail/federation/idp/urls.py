from django.urls import path

from . import views

app_name = "federation_idp"

urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path("sso", views.sso, name="sso"),
    path("sso/suite/<str:key>", views.sso_continue, name="continue"),
    path("initier/<int:pk>", views.initiate, name="initiate"),
    path("slo", views.slo, name="slo"),
    path("slo/envoi/<str:token>", views.slo_post, name="slo-post"),
]
