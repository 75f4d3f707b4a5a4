from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "portail.console"
    label = "console"
    verbose_name = "Console des référents ENT"
    default_auto_field = "django.db.models.BigAutoField"
