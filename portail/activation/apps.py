from django.apps import AppConfig


class ActivationConfig(AppConfig):
    name = "portail.activation"
    label = "activation"
    verbose_name = "Activation"
