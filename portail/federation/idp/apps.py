from django.apps import AppConfig


class FederationIdpConfig(AppConfig):
    name = "portail.federation.idp"
    label = "federation_idp"
    verbose_name = "Fournisseur d'identité SAML (GAR)"

    def ready(self):
        from . import signals  # noqa: F401  (portal logout -> SAML single logout)
