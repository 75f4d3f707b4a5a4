from django.apps import AppConfig


class FederationLoginConfig(AppConfig):
    name = "portail.federation.login"
    label = "federation_login"
    verbose_name = "Connexion fédérée (ÉduConnect, FranceConnect)"

    def ready(self):
        from . import signals  # noqa: F401  (a pending FranceConnect link completes at login)
