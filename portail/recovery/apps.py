from django.apps import AppConfig


class RecoveryConfig(AppConfig):
    name = "portail.recovery"
    label = "recovery"
    verbose_name = "Besoin d'aide"
