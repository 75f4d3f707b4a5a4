"""`portail add-structure --uai 0751234A --name "Lycée Claude Monet"`: create or rename a school."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from portail.directory.models import Structure, uai_validator

from ._errors import Erreur


class Command(BaseCommand):
    help = "Crée un établissement (ou met à jour son nom) à partir de son UAI."

    def add_arguments(self, parser):
        parser.add_argument("--uai", required=True, help="code UAI, par exemple 0751234A")
        parser.add_argument("--name", required=True, help="nom de l'établissement")

    def handle(self, *args, uai, name, **options):
        uai = uai.strip().upper()  # "0751234a" is what people type for 0751234A
        name = " ".join(name.split())
        try:
            uai_validator(uai)
        except ValidationError as exc:
            raise Erreur(f"UAI « {uai} » refusé. {exc.messages[0]}") from None
        if not name:
            raise Erreur("Le nom de l'établissement est vide.")
        if len(name) > Structure._meta.get_field("name").max_length:
            raise Erreur("Le nom de l'établissement est trop long (200 caractères au plus).")
        structure, created = Structure.objects.update_or_create(uai=uai, defaults={"name": name})
        verb = "créé" if created else "mis à jour"
        self.stdout.write(f"Établissement {verb} : {structure.name} ({structure.uai})")
