from django.urls import path

from . import views

app_name = "pages"
urlpatterns = [
    path("mentions-legales", views.legal_notice, name="legal"),
    path("accessibilite", views.accessibility, name="accessibility"),
    path("donnees-personnelles", views.personal_data, name="personal_data"),
    path("charte", views.charter, name="charter"),
    path("marque/couleurs.css", views.brand_css, name="brand_css"),
    path("marque/logo", views.logo, name="logo"),
]
