from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "portail.mail"
    label = "mail"
    verbose_name = "Courriels"
