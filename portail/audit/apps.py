from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "portail.audit"
    label = "audit"
    verbose_name = "Journal"
