from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "portail.directory"
    label = "directory"
    verbose_name = "Annuaire"
