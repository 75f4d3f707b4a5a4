"""A référent imports his school's CSV: upload, preview (nothing saved), confirm, report, letters."""

import io
import re

import pypdf
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from portail.accounts.models import Profile, User
from portail.accounts.provisioning import create_account
from portail.directory.models import SchoolClass

from .conftest import text

pytestmark = pytest.mark.django_db
PUPILS = "Prénom*;Nom*;Date de naissance*;Classes*\nLéa;Petit;04/05/2012;6e B\nNoé;Grand;12/11/2011;6e B\n"


def upload(console, structure, content=PUPILS, **extra):
    data = {"step": "preview", "structure": structure.pk, "profile": "eleve", **extra}
    data["file"] = SimpleUploadedFile("eleves.csv", content.encode("utf-8"), "text/csv")
    return console.post("/console/import", data)


def test_preview_then_confirm_then_print_the_class_letters(console, school):
    preview = text(upload(console, school))
    assert "Aperçu seulement" in preview and "Confirmer l'import" in preview
    assert not User.objects.filter(last_name="Petit").exists()

    report = console.post("/console/import", {"step": "confirm"})
    page = text(report)
    assert "Rapport d'import" in page
    assert User.objects.filter(last_name__in=["Petit", "Grand"], structures=school).count() == 2
    assert "Fiches de la classe 6e B" in page
    # The new accounts' letters are one lot, ready at once: PDF and CSV of the same codes.
    assert "Télécharger les fiches des nouveaux comptes" in page
    lot = text(console.get("/console/fiches/lot"))
    assert "2 fiches" in lot
    batch = re.search(r'name="batch" value="([^"]+)"', lot).group(1)
    pdf = console.post(
        "/console/fiches/telecharger", {"batch": batch, "output": "pdf", "per_page": "8"}
    )
    content = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Léa Petit" in content and "Noé Grand" in content
    code = re.search(r"Identifiant\s+lea\.petit\s+Code d’activation\s+([a-z0-9]{8})", content)
    code = code.group(1)
    login = Client().post("/auth/login", {"identifier": "lea.petit", "password": code})
    assert login["Location"] == "/auth/activation"
    # Reprinting the class later issues no new code unless asked.
    confirm = text(
        console.get(
            f"/console/fiches?school_class={User.objects.get(identifier='lea.petit').classes.get().pk}&only_pending=on&per_page=8"
        )
    )
    assert "2 comptes non activés ont déjà une fiche avec un code valable" in confirm
    # The pending file is gone: a second confirmation imports nothing.
    again = console.post("/console/import", {"step": "confirm"}, follow=True)
    assert "Aucun import en attente" in text(again)


def test_unreadable_file_changes_nothing(console, school):
    response = upload(console, school, content="Nom;Ville\nPetit;Melun\n")
    assert "Colonnes obligatoires absentes" in text(response)
    assert console.post("/console/import", {"step": "confirm"}).status_code == 302
    assert User.objects.count() == 1  # the référent alone


def test_cannot_import_into_another_school(console, school_b):
    response = upload(console, school_b)
    assert response.status_code == 200
    assert "Sélectionnez un choix valide" in text(response)
    assert not User.objects.filter(last_name="Petit").exists()


@pytest.mark.parametrize("profile", ["eleve", "parent", "enseignant", "personnel"])
def test_each_profile_has_a_template_that_imports_cleanly(console, school, profile):
    """The template's columns are the ones the importer reads, and its example row imports."""
    from portail.directory.imports.region_csv import _ALIASES
    from portail.directory.imports.text import fold_header

    page = text(console.get("/console/import"))
    assert f'href="/console/import/modele-{profile}.csv"' in page
    response = console.get(f"/console/import/modele-{profile}.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    raw = response.content
    assert raw.startswith("\ufeff".encode())  # UTF-8 with BOM: Excel shows the accents
    lines = raw.decode("utf-8-sig").split("\r\n")
    header = lines[0].split(";")
    assert all(fold_header(h) in _ALIASES for h in header), header  # every column is read
    if profile == "parent":  # the example's child must exist to be linked
        create_account(
            "Léa",
            "Petit",
            Profile.ELEVE,
            structures=[school],
            classes=[SchoolClass.objects.create(structure=school, name="6e B")],
        )
    preview = text(upload(console, school, content=raw.decode("utf-8-sig"), profile=profile))
    assert "<dt>Lignes rejetées</dt><dd>0</dd>" in preview
    assert "<dt>Comptes à créer</dt><dd>1</dd>" in preview
    assert "Confirmer l'import" in preview


def test_unknown_template_is_not_found(console):
    assert console.get("/console/import/modele-inconnu.csv").status_code == 404


def test_no_confirm_button_when_every_row_is_rejected(console, school):
    page = text(upload(console, school, content="Prénom;Nom;Date de naissance;Classes\nLéa;;;\n"))
    assert "Lignes rejetées" in page and "Confirmer l'import" not in page
    assert "Aucune ligne ne peut être importée" in page
    assert "Nom manquant ; Date de naissance manquante ; Classes manquantes." in page
    # Nothing waits for a confirmation either.
    again = console.post("/console/import", {"step": "confirm"}, follow=True)
    assert "Aucun import en attente" in text(again)
