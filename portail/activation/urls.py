from django.urls import path

from . import views

app_name = "activation"
urlpatterns = [
    path("activation", views.activate, name="activate"),
    path("charte", views.charter, name="charter"),
]
