from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "portail.security"
    label = "security"
    verbose_name = "Sécurité"
