"""« Mon compte » and the home page in Chromium at 1280 px and at 375 px (a small phone): no
horizontal scroll, nothing cut, axe-core clean; the sessions list and « Se déconnecter de tous les
autres appareils » clicked as a user would. Screenshots land in /tmp/portail-account-*.png."""

import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from portail.accounts.models import Profile
from portail.directory.models import SchoolClass, Structure
from portail.sso.models import Application
from tests.e2e.conftest import _new_page
from tests.e2e.helpers import log_in
from tests.helpers import STRONG_PASSWORD, account

pytestmark = pytest.mark.e2e

WIDTHS = [1280, 375]
SHOTS = Path(tempfile.gettempdir())  # for a reviewer's eyes; nothing asserts on them
LONG_EMAIL = "marie-christine.de-la-fontaine-saint-exupery@academie-exemple-normandie.fr"
LONG_SCHOOL = (
    "Lycée polyvalent régional Marguerite-Yourcenar-et-Antoine-de-Saint-Exupéry "
    "(établissement public local d’enseignement)"
)
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


@pytest.fixture
def parent(db):
    school = Structure.objects.create(uai="0761234C", name=LONG_SCHOOL)
    SchoolClass.objects.create(structure=school, name="2de 3")
    return account(
        "marie.delafontaine",
        "Marie-Christine",
        "de La Fontaine-Saint-Exupéry",
        LONG_EMAIL,
        [school],
        password=STRONG_PASSWORD,
        profile=Profile.PARENT,
    )


def open_page(browser, a11y, live_server, width, **extra):
    return _new_page(
        browser,
        a11y,
        live_server.url,
        viewport={"width": width, "height": 900},
        is_mobile=width < 600,
        has_touch=width < 600,
        **extra,
    )


def fits(page):
    """No horizontal scroll: the document is no wider than the window."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def inside(page, locator):
    box = locator.bounding_box()
    return (
        box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_account_page_fits_lists_devices_and_ends_the_others(
    browser, a11y, live_server, parent, width
):
    # Another device first: a phone, somewhere else.
    phone_context, phone = open_page(browser, a11y, live_server, 375, user_agent=PHONE_UA)
    phone.goto("/auth/login")
    a11y(phone)
    log_in(phone, parent.identifier, STRONG_PASSWORD)
    expect(phone.get_by_role("button", name="Se déconnecter")).to_be_visible()
    a11y(phone)

    context, page = open_page(browser, a11y, live_server, width)
    try:
        page.goto("/auth/login")
        log_in(page, parent.identifier, STRONG_PASSWORD)
        page.get_by_role("navigation", name="Compte").get_by_role("link", name="Mon compte").click()
        expect(page.get_by_role("heading", level=1, name="Mon compte")).to_be_visible()
        a11y(page)
        assert fits(page), page.evaluate("document.documentElement.scrollWidth")
        # The address and the school wrap instead of being cut.
        assert inside(page, page.get_by_text(LONG_EMAIL, exact=True))
        assert inside(page, page.get_by_text(LONG_SCHOOL, exact=True))
        devices = page.get_by_role("region", name="Mes appareils connectés")
        expect(devices).to_contain_text("(cet appareil)")
        expect(devices).to_contain_text("Chrome sur Android")
        logins = page.get_by_role("table", name="Mes dernières connexions")
        expect(logins.get_by_role("row")).to_have_count(3)  # header + two logins
        page.screenshot(path=SHOTS / f"portail-account-{width}.png", full_page=True)

        page.get_by_role("button", name="Se déconnecter de tous les autres appareils").click()
        expect(page.get_by_text("1 autre session a été fermée.")).to_be_visible()
        expect(devices).not_to_contain_text("Chrome sur Android")
        a11y(page)
        assert fits(page)

        # The phone is logged out at its next page.
        phone.reload()
        expect(phone).to_have_url(re.compile(r"/auth/login"))
        a11y(phone)
    finally:
        context.close()
        phone_context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_home_tiles_have_icons_and_fit(browser, a11y, live_server, parent, width):
    for position, (name, label) in enumerate(
        [("Cahier de textes", "CT"), ("Classeur", "CL"), ("Ressources numériques", "RN")]
    ):
        Application.objects.create(
            name=name,
            short_label=label,
            description="Une application de démonstration au nom un peu long",
            url=f"https://app{position}.example.test/",
            kind=Application.Kind.CAS,
            cas_service_patterns=f"https://app{position}.example.test/",
            position=position,
        )
    context, page = open_page(browser, a11y, live_server, width)
    try:
        page.goto("/auth/login")
        a11y(page)
        log_in(page, parent.identifier, STRONG_PASSWORD)
        tiles = page.get_by_role("region", name="Mes applications").get_by_role("listitem")
        expect(tiles).to_have_count(3)
        a11y(page)
        assert fits(page)
        # The link is named by the application, the picture is decorative.
        link = page.get_by_role("link", name=re.compile("^Cahier de textes"))
        expect(link).to_have_attribute("href", "https://app0.example.test/")
        expect(link.locator("img")).to_have_attribute("alt", "")
        assert link.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
        # Without a picture of its own, the tile shows its letters.
        expect(
            page.get_by_role("link", name=re.compile("^Ressources")).locator("img")
        ).to_have_count(0)
        for tile in tiles.all():
            assert inside(page, tile)
        page.screenshot(path=SHOTS / f"portail-home-{width}.png", full_page=True)
    finally:
        context.close()


def test_home_without_tiles_says_what_to_do(browser, a11y, live_server, parent):
    context, page = open_page(browser, a11y, live_server, 375)
    try:
        page.goto("/auth/login")
        a11y(page)
        log_in(page, parent.identifier, STRONG_PASSWORD)
        region = page.get_by_role("region", name="Mes applications")
        expect(region).to_contain_text("Aucune application n’est encore proposée à votre profil.")
        expect(region).to_contain_text("référent ENT")
        a11y(page)
        assert fits(page)
        page.screenshot(path=SHOTS / "portail-home-empty-375.png", full_page=True)
    finally:
        context.close()
