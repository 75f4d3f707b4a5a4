"""A console import leaves one "account.created" event per new account in the audit trail."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from portail.accounts.models import User
from portail.audit.models import Event
from portail.directory.imports.region_csv import import_region_csv

from .conftest import text

pytestmark = pytest.mark.django_db
PUPILS = "Prénom*;Nom*;Date de naissance*;Classes*\nLéa;Petit;04/05/2012;6e B\nNoé;Grand;12/11/2011;6e B\n"


def import_file(console, school, content=PUPILS):
    data = {"step": "preview", "structure": school.pk, "profile": "eleve"}
    data["file"] = SimpleUploadedFile("eleves.csv", content.encode(), "text/csv")
    before = Event.objects.filter(tag="account.created").count()
    console.post("/console/import", data)
    assert Event.objects.filter(tag="account.created").count() == before  # a preview: nothing
    return console.post("/console/import", {"step": "confirm"})


def test_confirmed_import_records_each_created_account_with_its_actor(console, referent, school):
    import_file(console, school)
    events = Event.objects.filter(tag="account.created").order_by("target__identifier")
    assert [e.target.identifier for e in events] == ["lea.petit", "noe.grand"]
    assert {e.subject for e in events} == {""}  # the account by its id, as audit.record() does
    lea = User.objects.get(identifier="lea.petit")
    first = events[0]
    assert first.target == lea and first.actor == referent
    assert first.data["source"] == f"csv:{school.uai}"
    assert first.data["after"] == {
        "identifier": "lea.petit",
        "profile": "eleve",
        "classes": ["6e B"],
    }
    assert first.ip == "127.0.0.1"
    page = text(console.get(f"/console/comptes/{lea.pk}/"))
    assert "Compte créé par Anne Martin (anne.martin)." in page
    assert f"Import du fichier de l'établissement {school.uai}" in page
    assert "Classe : 6e B" in page and "Profil : Élève" in page


def test_reimport_creates_no_account_and_records_no_creation(console, school):
    import_file(console, school)
    import_file(console, school, PUPILS + "Inès;Benali;01/02/2012;6e B\n")
    assert sorted(e.target.identifier for e in Event.objects.filter(tag="account.created")) == [
        "ines.benali",
        "lea.petit",
        "noe.grand",
    ]


def test_imports_outside_the_console_record_only_their_summary(school):
    import_region_csv(PUPILS.encode(), structure=school, profile="eleve")
    assert User.objects.filter(identifier="lea.petit").exists()
    assert not Event.objects.filter(tag="account.created").exists()
    assert Event.objects.filter(tag="directory.import").exists()
