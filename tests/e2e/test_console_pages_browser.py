"""The référent console at 1280 and 375 px: no horizontal scroll, axe-core clean (best practices
included), the navigation marks the current section, and the main path by keyboard only.

Screenshots of each page at both sizes go to $PORTAIL_SCREENSHOTS (default: a temporary folder)
for a reviewer to look at.
"""

import io
import os
import tempfile
from pathlib import Path

import pypdf
import pytest
from playwright.sync_api import expect

from portail.accounts.models import Profile, State
from portail.accounts.provisioning import create_account
from portail.directory.models import Function
from tests.conftest import STRONG_PASSWORD
from tests.console.conftest import enrol, staff, totp_now

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTHS = {"bureau": {"width": 1280, "height": 900}, "telephone": {"width": 375, "height": 740}}


@pytest.fixture
def referent(school):
    user = staff("anne.martin", school)
    Function.objects.create(user=user, role=Function.Role.REFERENT, structure=school)
    enrol(user)
    return user


@pytest.fixture
def accounts(school, school_class, active_user):
    pupils = [
        create_account(first, last, Profile.ELEVE, structures=[school], classes=[school_class])[0]
        for first, last in [
            ("Élodie", "Dupré"),
            ("Marie-Charlotte", "de La Tour d'Auvergne-Lauraguais"),
            ("José", "García"),
        ]
    ]
    twin, _ = create_account("Élodie", "Dupré", Profile.ELEVE, structures=[school])
    return pupils, twin


def shots_dir():
    default = Path(tempfile.gettempdir()) / "portail-console-screenshots"
    folder = Path(os.environ.get("PORTAIL_SCREENSHOTS", default))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_console(browser, live_server, a11y, viewport):
    context = browser.new_context(
        base_url=live_server.url, locale="fr-FR", viewport=viewport, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    context.on("page", lambda tab: tab.on("framenavigated", a11y.on_navigation))
    page = context.new_page()
    page.goto("/console/")
    a11y(page)
    page.get_by_label("Identifiant").fill("anne.martin")
    page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Connexion").click()
    expect(page.get_by_label("Code de vérification")).to_be_visible()
    a11y(page)
    page.get_by_label("Code de vérification").fill(totp_now())
    page.get_by_role("button", name="Vérifier").click()
    expect(page.get_by_role("heading", name="Console du référent ENT")).to_be_visible()
    return context, page


def check(page, a11y, name, size):
    """Fits the screen, passes axe-core, and is kept as a screenshot."""
    width = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("innerWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
        " > innerWidth + 1).slice(-3).map(e => e.outerHTML.slice(0, 120))"
    )
    assert width <= inner, f"{name} at {size}: {width} px wide in a {inner} px window: {wide}"
    a11y(page)
    page.screenshot(path=str(shots_dir() / f"console-{name}-{size}.png"), full_page=True)


@pytest.mark.parametrize("size", WIDTHS)
def test_console_pages_fit_and_pass_axe(browser, live_server, a11y, referent, accounts, size):
    pupils, _ = accounts
    context, page = open_console(browser, live_server, a11y, WIDTHS[size])
    check(page, a11y, "recherche", size)
    current = page.get_by_role("navigation", name="Console du référent").locator(
        "[aria-current=page]"
    )
    expect(current).to_have_text("Rechercher un compte")

    page.get_by_role("link", name="de La Tour d'Auvergne-Lauraguais Marie-Charlotte").click()
    expect(page.get_by_role("heading", name="Marie-Charlotte")).to_be_visible()
    expect(current).to_have_text("Rechercher un compte")
    # Destructive actions are set apart and look it.
    block = page.get_by_role("link", name="Bloquer le compte")
    assert "button--danger" in block.get_attribute("class")
    check(page, a11y, "compte", size)

    block.click()
    expect(page.get_by_role("heading", name="Bloquer le compte")).to_be_visible()
    check(page, a11y, "confirmation-blocage", size)
    page.get_by_role("button", name="Bloquer le compte").click()
    expect(page.get_by_text("Le compte est bloqué.")).to_be_visible()
    check(page, a11y, "compte-bloque", size)

    page.get_by_role("link", name="Fiches de connexion").click()
    expect(current).to_have_text("Fiches de connexion")
    check(page, a11y, "fiches", size)
    page.get_by_label("Générer de nouveaux codes pour les comptes qui ont déjà une fiche").check()
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("button", name="Générer les fiches")).to_be_visible()
    check(page, a11y, "fiches-confirmation", size)
    page.get_by_role("button", name="Générer les fiches").click()
    expect(page.get_by_role("heading", name="Fiches prêtes")).to_be_visible()
    check(page, a11y, "fiches-pretes", size)

    page.get_by_role("link", name="Journal").click()
    expect(current).to_have_text("Journal")
    expect(page.locator("td", has_text="Compte bloqué par Anne Martin").first).to_be_visible()
    check(page, a11y, "journal", size)
    body = page.locator("table").inner_text()
    assert "console.account" not in body and "pending" not in body and "[" not in body

    page.get_by_role("link", name="Importer un fichier").click()
    expect(current).to_have_text("Importer un fichier")
    check(page, a11y, "import", size)

    page.get_by_role("link", name="Doublons possibles").click()
    check(page, a11y, "doublons", size)
    context.close()


def tab_to(page, name, limit=80, element_id=None):
    """Tab until the focused element's text is `name` (as a keyboard user does)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if element_id and page.evaluate("document.activeElement.id") == element_id:
            return
        focused = page.evaluate(
            "(() => { const e = document.activeElement;"
            " return (e.textContent || e.value || e.getAttribute('aria-label') || '').trim(); })()"
        )
        if " ".join(focused.split()) == name:
            return
    raise AssertionError(f"« {name} » never got the focus")


def test_keyboard_only_search_new_code_and_letter(browser, live_server, a11y, referent, accounts):
    pupils, _ = accounts
    pupil = pupils[2]
    context, page = open_console(browser, live_server, a11y, WIDTHS["bureau"])
    a11y(page)
    tab_to(page, "", element_id="id_q")  # the search field
    page.keyboard.type("garcía")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="García José")).to_be_visible()
    a11y(page)
    tab_to(page, "García José")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="José García")).to_be_visible()
    a11y(page)
    tab_to(page, "Donner un nouveau code d’activation")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Donner un nouveau code d’activation")).to_be_visible()
    a11y(page)
    tab_to(page, "Donner un nouveau code")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Nouveau code d’activation")).to_be_visible()
    a11y(page)
    code = page.locator("code").inner_text()
    tab_to(page, "Télécharger la fiche de connexion")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    printed = pypdf.PdfReader(io.BytesIO(Path(download.value.path()).read_bytes()))
    text = printed.pages[0].extract_text()
    assert pupil.identifier in text and code in text
    pupil.refresh_from_db()
    assert pupil.state == State.PENDING
    context.close()
