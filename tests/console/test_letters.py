"""Login letters: the PDF read back, its codes log in, and the same selection as CSV."""

import csv
import io
import re

import pypdf
import pytest
from django.test import Client

from portail.accounts.models import Profile
from portail.accounts.provisioning import create_account
from portail.accounts.services import usable_activation_token
from portail.audit.models import Event
from portail.console.letters import Letter, csv_cell, letters_csv, letters_pdf

from .conftest import text

pytestmark = pytest.mark.django_db
NAMES = [("Élodie", "Dupré"), ("Mary Anne", "O'Connor"), ("José", "García")]


@pytest.fixture
def class_of_three(school, school_class):
    return [
        create_account(first, last, Profile.ELEVE, structures=[school], classes=[school_class])
        for first, last in NAMES
    ]


def pdf_text(content):
    reader = pypdf.PdfReader(io.BytesIO(content))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_confirmation_says_new_codes_will_be_issued(console, class_of_three, school_class):
    page = text(
        console.get(f"/console/fiches?school_class={school_class.pk}&per_page=1&output=pdf")
    )
    assert "3 fiches" in page and "NOUVEAU code d'activation" in page
    assert "ne fonctionneront plus" in page
    # Nothing was issued by looking at the confirmation.
    for user, code in class_of_three:
        assert usable_activation_token(user, code) is not None


def test_letters_pdf_carries_names_identifiers_codes_that_log_in(
    console, referent, class_of_three, school_class, active_user
):
    response = console.post(
        "/console/fiches", {"school_class": school_class.pk, "per_page": "2", "output": "pdf"}
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    pages, content = pdf_text(response.content)
    assert pages == 2  # three letters, two per page
    assert "jean.dupont" not in content  # not in the class
    for (user, old_code), (first, last) in zip(class_of_three, NAMES, strict=True):
        assert f"{first} {last}" in content and user.identifier in content
        assert "2nde 3" in content
        found = re.search(
            rf"Identifiant : {re.escape(user.identifier)}\s+Mot de passe de 1ère connexion : ([a-z0-9]{{8}})",
            content,
        )
        code = found.group(1)
        assert code != old_code
        assert usable_activation_token(user, old_code) is None  # the old letter is dead
        login = Client().post("/auth/login", {"identifier": user.identifier, "password": code})
        assert login.status_code == 302 and login["Location"] == "/auth/activation"
        issued = Event.objects.get(tag="console.letters.new_code", target=user)
        assert issued.actor == referent and code not in str(issued.data)
    assert "https://ent.example.test/auth/login" in content
    assert "L'identifiant « prenom.nom » ne comporte ni majuscule, ni accent." in content
    assert "(minuscules et chiffres)" in content


@pytest.mark.parametrize("per_page,pages", [(1, 9), (2, 5), (8, 2)])
def test_letters_per_page(per_page, pages):
    letters = [Letter("A", f"B{i}", "6e1", "Collège", f"a.b{i}", "abcdefgh") for i in range(9)]
    count, content = pdf_text(letters_pdf(letters, per_page))
    assert count == pages
    assert all(f"a.b{i}" in content for i in range(9))


def test_only_pending_and_profile_filters(console, class_of_three, active_user, school):
    response = console.post(
        "/console/fiches", {"only_pending": "on", "per_page": "8", "output": "csv"}
    )
    body = response.content.decode("utf-8-sig")
    assert "elodie.dupre" in body and "jean.dupont" not in body
    response = console.post(
        "/console/fiches", {"profile": "parent", "per_page": "8", "output": "csv"}
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert [r[3] for r in rows[1:]] == ["jean.dupont"]
    assert rows[1][4] == ""  # an activated account gets no code


def test_csv_export_has_the_import_header_and_working_codes(console, class_of_three):
    response = console.post("/console/fiches", {"per_page": "1", "output": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert {r["Identifiant"] for r in rows} == {u.identifier for u, _ in class_of_three}
    for row in rows:
        login = Client().post(
            "/auth/login", {"identifier": row["Identifiant"], "password": row["Code d'activation"]}
        )
        assert login["Location"] == "/auth/activation"


@pytest.mark.parametrize(
    "value,cell",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+33612", "'+33612"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("Dupré", "Dupré"),
        ("Jean-Luc", "Jean-Luc"),
    ],
)
def test_csv_cells_are_escaped_against_formula_injection(value, cell):
    assert csv_cell(value) == cell


def test_a_formula_in_a_name_is_escaped_in_the_export(console, school):
    create_account("=cmd|'/c calc'!A0", "@Evil", Profile.PERSONNEL, structures=[school])
    body = console.post("/console/fiches", {"per_page": "1", "output": "csv"}).content.decode(
        "utf-8-sig"
    )
    row = next(csv.DictReader(io.StringIO(body), delimiter=";"))
    assert row["Prénom"] == "'=cmd|'/c calc'!A0" and row["Nom"] == "'@Evil"
    assert letters_csv([]).startswith("\ufeffNom;Prénom;Classes;Identifiant;Code d'activation")
