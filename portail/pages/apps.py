from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "portail.pages"
    label = "pages"
    verbose_name = "Pages publiques (mentions légales, accessibilité, données personnelles)"
