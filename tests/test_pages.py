"""The brand (name, logo, checked colour) and the legal pages a region fills (portail.pages)."""

import pytest

from portail.pages import brand
from tests.helpers import text
from tests.test_settings_required import load_settings

LEGAL_PAGES = ["/mentions-legales", "/accessibilite", "/donnees-personnelles", "/charte"]


# --- Brand ---------------------------------------------------------------------------------------


def test_contrast_is_computed_as_wcag_says():
    assert round(brand.contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(brand.contrast("#767676", "#ffffff"), 2) == 4.54
    assert brand.contrast(brand.DEFAULT_PRIMARY, "#ffffff") >= 4.5


@pytest.mark.parametrize("colour", ["#1d4f91", "#000", "#B3261E", " #123456 "])
def test_readable_colours_are_accepted_and_normalised(colour):
    value = brand.check_primary_colour(colour)
    assert value.startswith("#") and len(value) == 7 and value == value.lower()


def test_empty_colour_is_the_neutral_default():
    assert brand.check_primary_colour("") == brand.DEFAULT_PRIMARY


@pytest.mark.parametrize(
    "colour, words",
    [
        ("#ffcc00", "contraste avec le blanc"),
        ("#87ceeb", "4.5:1"),
        ("bleu", "hexadécimale"),
        ("#12345", "hexadécimale"),
    ],
)
def test_unreadable_or_malformed_colours_are_refused_in_clear_words(colour, words):
    with pytest.raises(brand.BrandError, match=words):
        brand.check_primary_colour(colour)


def test_the_portal_refuses_to_start_with_a_colour_white_text_cannot_be_read_on():
    result = load_settings(PORTAIL_DEBUG="1", PORTAIL_COLOR_PRIMARY="#ffdd00")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "PORTAIL_COLOR_PRIMARY" in result.stderr


def test_the_portal_refuses_a_missing_logo_file_and_a_wrong_accessibility_status(tmp_path):
    result = load_settings(PORTAIL_DEBUG="1", PORTAIL_LOGO=str(tmp_path / "absent.svg"))
    assert result.returncode != 0 and "PORTAIL_LOGO" in result.stderr
    result = load_settings(PORTAIL_DEBUG="1", PORTAIL_ACCESSIBILITY_STATUS="presque")
    assert result.returncode != 0 and "PORTAIL_ACCESSIBILITY_STATUS" in result.stderr


@pytest.mark.django_db
def test_without_a_region_the_header_says_ent_and_with_one_its_name(client, settings):
    settings.PORTAIL_REGION_NAME = ""
    page = text(client.get("/auth/login"))
    assert '<span class="brand__name">ENT</span>' in page and "— ENT</title>" in page
    settings.PORTAIL_REGION_NAME = "Exemple"
    page = text(client.get("/auth/login"))
    assert (
        '<span class="brand__name">ENT Exemple</span>' in page and "— ENT Exemple</title>" in page
    )


@pytest.mark.django_db
def test_the_colour_is_served_as_a_stylesheet_the_csp_allows(client, settings):
    settings.PORTAIL_COLOR_PRIMARY = "#2a5d1f"
    response = client.get("/marque/couleurs.css")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/css")
    body = response.content.decode()
    assert "--color-primary: #2a5d1f;" in body and "--color-primary-hover: #" in body
    assert 'href="/marque/couleurs.css"' in text(client.get("/auth/login"))


@pytest.mark.django_db
def test_a_configured_logo_is_served_and_shown(client, settings, tmp_path):
    logo = tmp_path / "region.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    assert client.get("/marque/logo").status_code == 404  # none configured: the default logo
    settings.PORTAIL_LOGO = str(logo)
    response = client.get("/marque/logo")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(response.streaming_content)
    assert "script-src" not in response["Content-Security-Policy"]
    assert 'src="/marque/logo"' in text(client.get("/auth/login"))


# --- Legal pages ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", LEGAL_PAGES + ["/auth/login", "/auth/help"])
def test_every_page_has_the_legal_footer_with_the_accessibility_status(client, url):
    page = text(client.get(url))
    for link in [
        '<a href="/mentions-legales">Mentions légales</a>',
        '<a href="/accessibilite">Accessibilité : partiellement conforme</a>',
        '<a href="/donnees-personnelles">Données personnelles</a>',
        '<a href="/charte">Charte d\'utilisation</a>',
    ]:
        assert link in page, link


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status, words", [("non", "non conforme"), ("totalement", "totalement conforme")]
)
def test_the_accessibility_status_is_configurable(client, settings, status, words):
    settings.PORTAIL_ACCESSIBILITY_STATUS = status
    page = text(client.get("/accessibilite"))
    assert f"Accessibilité : {words}</a>" in page
    assert f"<strong>{words}</strong>" in page


@pytest.mark.django_db
def test_the_accessibility_statement_has_what_the_rgaa_asks(client):
    page = text(client.get("/accessibilite"))
    for expected in [
        "État de conformité",
        "RGAA",
        "Contenus non accessibles",
        "Dérogations pour charge disproportionnée",
        "Retour d'information et contact",
        "Voies de recours",
        "Défenseur des droits",
        "Libre réponse 71120",
    ]:
        assert expected in page, expected


@pytest.mark.django_db
def test_personal_data_gives_the_retention_periods_the_portal_enforces(client, settings):
    settings.PORTAIL_AUDIT_RETENTION_DAYS = 183
    settings.PORTAIL_SESSION_HOURS = 9
    settings.PORTAIL_REMEMBER_ME_DAYS = 21
    settings.PORTAIL_RESET_LINK_MINUTES = 45
    settings.PORTAIL_ACTIVATION_CODE_DAYS = 200
    settings.PORTAIL_DEVICE_COOKIE_DAYS = 90
    settings.PORTAIL_LEAVER_GRACE_DAYS = 15
    page = text(client.get("/donnees-personnelles"))
    for figure in [
        "183 jours",
        "9 heures",
        "21 jours",
        "45 minutes",
        "200 jours",
        "90 jours",
        "15 jours",
    ]:
        assert figure in page, figure
    for expected in ["Responsable du traitement", "Base légale", "Vos droits", "CNIL", "mineur"]:
        assert expected in page, expected


@pytest.mark.django_db
def test_a_region_fills_the_legal_pages_from_settings(client, settings):
    settings.PORTAIL_LEGAL = {
        "publisher": "Région Exemple",
        "publisher_address": "1 rue de la Région, 00000 Exemple",
        "director": "Mme la Présidente",
        "host": "Hébergeur SAS, 2 rue du Serveur",
        "contact_email": "ent@region.example",
        "dpo_contact": "dpo@region.example",
        "accessibility_contact": "accessibilite@region.example",
        "accessibility_audit": "",
    }
    legal = text(client.get("/mentions-legales"))
    for expected in [
        "Région Exemple",
        "1 rue de la Région",
        "Mme la Présidente",
        "Hébergeur SAS",
        "ent@region.example",
    ]:
        assert expected in legal, expected
    assert "à renseigner" not in legal
    assert "dpo@region.example" in text(client.get("/donnees-personnelles"))
    assert "accessibilite@region.example" in text(client.get("/accessibilite"))


@pytest.mark.django_db
def test_unfilled_legal_fields_say_what_to_set(client, settings):
    settings.PORTAIL_REGION_NAME = ""
    settings.PORTAIL_LEGAL = {}
    page = text(client.get("/mentions-legales"))
    assert "PORTAIL_LEGAL_PUBLISHER" in page and "PORTAIL_LEGAL_HOST" in page


@pytest.mark.django_db
def test_the_charter_is_the_one_the_activation_page_shows(client):
    assert client.get("/charte").content == client.get("/auth/charte").content


@pytest.mark.django_db
def test_legal_pages_refuse_post(client):
    assert client.post("/mentions-legales").status_code == 405
