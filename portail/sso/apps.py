from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "portail.sso"
    label = "sso"
    verbose_name = "Authentification unique (CAS, OpenID Connect)"

    def ready(self):
        from . import signals  # noqa: F401  (portal logout -> CAS single logout)
