"""Errors of the `portail` commands, shown to the référent in French.

Django prints a CommandError as "<class name>: <message>"; the class is named for that line.
"""

from django.core.management.base import CommandError


class Erreur(CommandError):  # noqa: N818 (its name is printed to French users: "Erreur: …")
    pass
