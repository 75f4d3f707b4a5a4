from django.apps import AppConfig


class ProfileConfig(AppConfig):
    """« Mon compte »: contact details, password change, open sessions and devices."""

    name = "portail.profile"
    label = "profile"
    verbose_name = "Mon compte"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import signals  # noqa: F401 - connects the login/logout receivers
