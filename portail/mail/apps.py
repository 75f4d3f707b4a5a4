from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "portail.mail"
    label = "mail"
    verbose_name = "Courriels"

    def ready(self):
        from . import metrics

        metrics.register()  # queue depth and age, read at scrape time
