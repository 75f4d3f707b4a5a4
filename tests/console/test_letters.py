"""Login letters: the PDF read back, its codes log in, and the same selection as CSV."""

import csv
import io
import re

import pypdf
import pytest
from django.test import Client

from portail.accounts.models import Profile, Token
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


def generate(console, **data):
    """Generate one lot of letters; returns the lot's id (kept sealed in the session)."""
    response = console.post("/console/fiches", data)
    assert response.status_code == 302 and response["Location"] == "/console/fiches/lot"
    page = text(console.get("/console/fiches/lot"))
    return re.search(r'name="batch" value="([^"]+)"', page).group(1)


def download(console, batch, output="pdf", per_page=1):
    response = console.post(
        "/console/fiches/telecharger", {"batch": batch, "output": output, "per_page": per_page}
    )
    assert response.status_code == 200, response
    assert "no-store" in response["Cache-Control"]  # codes: never in a cache
    return response


def csv_rows(response):
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))


def test_confirmation_says_what_happens_and_issues_nothing(
    console, class_of_three, school_class, active_user
):
    page = text(console.get(f"/console/fiches?school_class={school_class.pk}&per_page=1"))
    # Created with a code (the import's): no new letter unless asked.
    assert "3 comptes non activés ont déjà une fiche avec un code valable" in page
    assert "0 fiche" in page and "Générer les fiches" not in page
    page = text(console.get(f"/console/fiches?school_class={school_class.pk}&per_page=1&renew=on"))
    assert "3 fiches" in page and "3 comptes non activés reçoivent un nouveau code" in page
    assert "les fiches déjà distribuées ne fonctionneront plus" in page
    # Nothing was issued by looking at the confirmation.
    for user, code in class_of_three:
        assert usable_activation_token(user, code) is not None


def test_codes_are_renewed_only_when_asked(console, class_of_three, school_class):
    (first, first_code), (second, second_code), (third, third_code) = class_of_three
    Token.objects.filter(user=third).delete()  # an account without any code gets one
    batch = generate(console, school_class=school_class.pk, per_page="1")
    rows = csv_rows(download(console, batch, "csv"))
    assert [r["Identifiant"] for r in rows] == [third.identifier]
    assert usable_activation_token(first, first_code) is not None  # untouched
    assert usable_activation_token(second, second_code) is not None
    assert usable_activation_token(third, rows[0]["Code d'activation"]) is not None

    batch = generate(console, school_class=school_class.pk, per_page="1", renew="on")
    rows = {
        r["Identifiant"]: r["Code d'activation"] for r in csv_rows(download(console, batch, "csv"))
    }
    assert set(rows) == {first.identifier, second.identifier, third.identifier}
    assert usable_activation_token(first, first_code) is None  # asked for: the old letter dies
    assert usable_activation_token(first, rows[first.identifier]) is not None
    renewed = Event.objects.filter(tag="console.letters.new_code", target=first).get()
    assert renewed.data["renewed"] is True


def test_pdf_and_csv_of_one_lot_carry_the_same_codes(
    console, referent, class_of_three, school_class
):
    batch = generate(console, school_class=school_class.pk, per_page="2", renew="on")
    rows = csv_rows(download(console, batch, "csv"))
    pages, content = pdf_text(download(console, batch, "pdf", per_page=2).content)
    assert pages == 2  # three letters, two per page
    again = csv_rows(download(console, batch, "csv"))
    assert again == rows  # downloading again issues nothing
    for (user, old_code), (first, last) in zip(class_of_three, NAMES, strict=True):
        row = next(r for r in rows if r["Identifiant"] == user.identifier)
        code = row["Code d'activation"]
        assert f"{first} {last}" in content and user.identifier in content
        assert re.search(
            rf"Identifiant\s+{re.escape(user.identifier)}\s+Code d’activation\s+{code}", content
        ), content
        assert "2de 3" in content  # French typography of « 2nde 3 »
        assert usable_activation_token(user, old_code) is None
        login = Client().post("/auth/login", {"identifier": user.identifier, "password": code})
        assert login.status_code == 302 and login["Location"] == "/auth/activation"
        issued = Event.objects.get(tag="console.letters.new_code", target=user)
        assert issued.actor == referent and code not in str(issued.data)
    assert "https://ent.example.test/auth/login" in content
    assert "L'identifiant « prenom.nom » ne comporte ni majuscule, ni accent." in content
    assert (
        "1. Ouvrez la page de connexion" in content and "2. Saisissez votre identifiant." in content
    )


def test_the_lot_is_sealed_in_the_session_and_expires(console, class_of_three, school_class):
    from portail.console.views.letters import SESSION_BATCH

    batch = generate(console, school_class=school_class.pk, per_page="1", renew="on")
    codes = [r["Code d'activation"] for r in csv_rows(download(console, batch, "csv"))]
    stored = console.session[SESSION_BATCH]
    assert stored["sealed"].startswith("gcm1:")
    assert not any(code in str(stored) for code in codes)
    # Another lot's id, then an expired lot: nothing is served, nothing is issued.
    refused = console.post(
        "/console/fiches/telecharger", {"batch": "autre", "output": "csv", "per_page": "1"}
    )
    assert refused.status_code == 302
    session = console.session
    session[SESSION_BATCH] = {**stored, "expires": 0}
    session.save()
    gone = console.post(
        "/console/fiches/telecharger",
        {"batch": batch, "output": "csv", "per_page": "1"},
        follow=True,
    )
    assert "ne sont plus disponibles" in text(gone)
    assert SESSION_BATCH not in console.session


def test_clearing_the_lot(console, class_of_three, school_class):
    from portail.console.views.letters import SESSION_BATCH

    batch = generate(console, school_class=school_class.pk, per_page="1", renew="on")
    cleared = console.post(
        "/console/fiches/telecharger", {"batch": batch, "clear": "1"}, follow=True
    )
    assert "effacés du serveur" in text(cleared) and SESSION_BATCH not in console.session


@pytest.mark.parametrize("per_page,pages", [(1, 9), (2, 5), (8, 2)])
def test_letters_per_page(per_page, pages):
    letters = [Letter("A", f"B{i}", "6e1", "Collège", f"a.b{i}", "abcdefgh") for i in range(9)]
    count, content = pdf_text(letters_pdf(letters, per_page))
    assert count == pages
    assert all(f"a.b{i}" in content for i in range(9))


def test_only_pending_and_profile_filters(console, class_of_three, active_user, school):
    body = download(console, generate(console, only_pending="on", per_page="8", renew="on"), "csv")
    body = body.content.decode("utf-8-sig")
    assert "elodie.dupre" in body and "jean.dupont" not in body
    rows = csv_rows(download(console, generate(console, profile="parent", per_page="8"), "csv"))
    assert [r["Identifiant"] for r in rows] == ["jean.dupont"]
    assert rows[0]["Code d'activation"] == ""  # an activated account gets no code


def test_csv_export_has_the_import_header_and_working_codes(console, class_of_three):
    response = download(console, generate(console, per_page="1", renew="on"), "csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
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
    row = csv_rows(download(console, generate(console, per_page="1", renew="on"), "csv"))[0]
    assert row["Prénom"] == "'=cmd|'/c calc'!A0" and row["Nom"] == "'@Evil"
    assert letters_csv([]).startswith("\ufeffNom;Prénom;Classes;Identifiant;Code d'activation")


def text_runs(content):
    """(text, effective size in points, font name) of every piece of text in the PDF."""
    runs = []
    for page in pypdf.PdfReader(io.BytesIO(content)).pages:

        def visit(value, cm, tm, font, size):
            if value.strip():
                scale = abs(tm[0] * cm[0]) or 1
                runs.append((value.strip(), size * scale, str((font or {}).get("/BaseFont", ""))))

        page.extract_text(visitor_text=visit)
    return runs


LONG = Letter(
    "Marie-Charlotte",
    "de La Tour d'Auvergne",
    "2de 3, 1re G2",
    "Lycée polyvalent Léonard de Vinci",
    "marie-charlotte.de-la-tour-dauvergne",
    "k7m2p9xq",
)
ACTIVE = Letter("Jean", "Dupont", "", "Collège Jean Moulin", "jean.dupont", None)


@pytest.mark.parametrize("per_page", [1, 2, 8])
def test_nothing_below_9_pt_and_credentials_at_14_pt_in_a_clear_monospace(per_page):
    runs = text_runs(letters_pdf([LONG, ACTIVE] * 4, per_page))
    assert runs and min(size for _, size, _ in runs) >= 9, sorted(runs, key=lambda r: r[1])[:3]
    codes = [(size, font) for value, size, font in runs if value == "k7m2p9xq"]
    assert len(codes) == 4
    assert all(size >= 14 and "DejaVuSansMono" in font for size, font in codes), codes
    identifiers = [r for r in runs if r[0] == "jean.dupont"]
    assert identifiers and all(size >= 14 for _, size, _ in identifiers)


@pytest.mark.parametrize("per_page", [1, 2, 8])
def test_each_letter_fits_its_cell(per_page, caplog):
    letters_pdf([LONG, ACTIVE] * 4, per_page)
    assert "past its cell" not in caplog.text


@pytest.mark.parametrize("per_page", [1, 8])
def test_the_qr_code_decodes_to_the_login_page(per_page):
    from pyzbar.pyzbar import decode

    page = pypdf.PdfReader(io.BytesIO(letters_pdf([LONG], per_page))).pages[0]
    found = [d.data.decode() for image in page.images for d in decode(image.image)]
    assert found == ["https://ent.example.test/auth/login"]


def test_letters_carry_the_region_name_and_logo(settings, tmp_path):
    from PIL import Image

    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 60), "#1f4e8c").save(logo)
    settings.PORTAIL_REGION_NAME = "Région Île-de-France"
    settings.PORTAIL_LOGO = str(logo)
    content = letters_pdf([LONG], 8)
    reader = pypdf.PdfReader(io.BytesIO(content))
    header = " ".join(reader.pages[0].extract_text().split())
    assert "Région Île-de-France — Fiche de connexion à l’ENT" in header
    assert len(reader.pages[0].images) == 2  # the logo and the QR code
    settings.PORTAIL_REGION_NAME = ""
    settings.PORTAIL_LOGO = None
    neutral = pypdf.PdfReader(io.BytesIO(letters_pdf([LONG], 1))).pages[0]
    assert "ENT — Espace numérique de travail" in neutral.extract_text()
    assert len(neutral.images) == 1


def test_instructions_are_numbered_instructions_in_one_vocabulary():
    _, content = pdf_text(letters_pdf([LONG, ACTIVE], 1))
    for step in (
        "1. Ouvrez la page de connexion",
        "2. Saisissez votre identifiant.",
        "3. Saisissez le code d’activation dans le champ « Mot de passe »",
        "4. Choisissez un nouveau mot de passe",
        "3. Saisissez le mot de passe que vous avez choisi à la 1re connexion.",
    ):
        assert step.replace(" ", "") in content.replace(" ", "").replace("\u00a0", ""), step
    assert "Mot de passe de 1ère connexion :" not in content  # the console's word: code
    assert "L'accès à la page de connexion" not in content  # a heading, not an instruction
