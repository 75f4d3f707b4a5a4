"""The console's main paths in Chromium, as a référent clicks them, with axe-core on every page.

Self-contained (its own browser fixtures) so it runs on this branch alone; tests/e2e/ has the
shared ones.
"""

import io
import os
import re
from pathlib import Path

import pyotp
import pypdf
import pytest
from playwright.sync_api import expect

from portail.accounts.models import State
from tests.conftest import STRONG_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM and Playwright share this thread
CHROMIUM = Path(os.environ.get("PORTAIL_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture
def chromium(browser):
    return browser  # the session's one Chromium (tests/browser.py)


@pytest.fixture
def check_a11y():
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()

    def check(page):
        page.wait_for_load_state("load")  # the whole document, not a half-parsed one
        results = axe.run(page)
        assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"

    return check


def new_page(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url, locale="fr-FR", accept_downloads=True)
    context.set_default_timeout(10_000)
    return context, context.new_page()


def log_in(page, identifier, password):
    page.get_by_label("Identifiant").fill(identifier)
    page.get_by_label("Mot de passe", exact=True).fill(password)
    page.get_by_role("button", name="Connexion").click()


def test_referent_enrols_finds_blocks_unblocks_gives_code_imports_and_prints_letters(
    chromium, live_server, check_a11y, referent, pupil_a, school_class
):
    pupil, _ = pupil_a
    context, page = new_page(chromium, live_server)
    page.goto("/console/")
    log_in(page, "anne.martin", STRONG_PASSWORD)

    # Enrolment: QR code and key, first code, then the recovery codes once.
    expect(
        page.get_by_role("heading", name="Activer la vérification en deux étapes")
    ).to_be_visible()
    check_a11y(page)
    secret = page.locator("code").inner_text().replace(" ", "")
    page.get_by_label("Code de vérification").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirmer").click()
    expect(page.get_by_role("heading", name="Codes de secours")).to_be_visible()
    expect(page.locator("ul.codes li")).to_have_count(10)
    check_a11y(page)
    page.get_by_role("link", name="Continuer vers la console").click()

    # Search.
    expect(page.get_by_role("heading", name="Console du référent ENT")).to_be_visible()
    check_a11y(page)
    page.get_by_label("Nom ou identifiant").fill("dupré")
    page.get_by_role("button", name="Rechercher").click()
    page.get_by_role("link", name="Dupré Élodie").click()
    expect(page.get_by_role("heading", name="Élodie Dupré")).to_be_visible()
    check_a11y(page)

    # Block, then unblock, each confirmed.
    page.get_by_role("link", name="Bloquer le compte").click()
    expect(page.get_by_role("heading", name="Bloquer le compte")).to_be_visible()
    check_a11y(page)
    page.get_by_role("button", name="Bloquer le compte").click()
    expect(page.get_by_text("Le compte est bloqué.")).to_be_visible()
    pupil.refresh_from_db()
    assert pupil.state == State.BLOCKED
    page.get_by_role("link", name="Débloquer le compte").click()
    page.get_by_role("button", name="Débloquer").click()
    expect(page.get_by_text("Le compte est débloqué.")).to_be_visible()

    # A new code, shown once.
    page.get_by_role("link", name="Donner un nouveau code d’activation").click()
    page.get_by_role("button", name="Donner un nouveau code").click()
    expect(page.get_by_role("heading", name="Nouveau code d’activation")).to_be_visible()
    check_a11y(page)

    # Import a class from the region's CSV: preview, confirm, then its letters.
    page.get_by_role("link", name="Importer un fichier").click()
    check_a11y(page)
    page.get_by_label("Profil des comptes du fichier").select_option(label="Élève")
    page.get_by_label("Fichier CSV").set_input_files(
        files=[
            {
                "name": "eleves.csv",
                "mimeType": "text/csv",
                "buffer": "Prénom*;Nom*;Date de naissance*;Classes*\nLéa;Petit;04/05/2012;6e B\n".encode(),
            }
        ]
    )
    page.get_by_role("button", name="Voir l’aperçu").click()
    expect(page.get_by_text("Aperçu seulement")).to_be_visible()
    check_a11y(page)
    page.get_by_role("button", name="Confirmer l’import").click()
    expect(page.get_by_role("heading", name="Rapport d’import")).to_be_visible()
    check_a11y(page)
    # The new accounts' letters are ready at once: one lot, its PDF and CSV.
    page.get_by_role("link", name="Télécharger les fiches des nouveaux comptes").click()
    expect(page.get_by_role("heading", name="Fiches prêtes")).to_be_visible()
    check_a11y(page)
    page.get_by_label("8 par page (à découper)").check()
    with page.expect_download() as download:
        page.get_by_role("button", name="Télécharger le PDF").click()
    content = pypdf.PdfReader(io.BytesIO(Path(download.value.path()).read_bytes()))
    printed = content.pages[0].extract_text()
    assert "Léa Petit" in printed
    code = re.search(r"Code d’activation\s+([a-z0-9]{8})", printed).group(1)

    # The letters form itself.
    page.get_by_role("link", name="Fiches de connexion").click()
    expect(page.get_by_label("Classe")).to_be_visible()
    check_a11y(page)

    page.get_by_role("link", name="Journal").click()
    expect(page.get_by_role("cell", name="Compte bloqué par Anne Martin")).to_be_visible()
    check_a11y(page)
    context.close()

    # The pupil logs in for the first time with the printed letter.
    context, page = new_page(chromium, live_server)
    page.goto("/auth/login")
    log_in(page, "lea.petit", code)
    expect(page).to_have_url(re.compile("/auth/activation$"))
    context.close()


def test_regional_admin_appoints_and_dismisses_a_referent_then_merges_duplicates(
    chromium, live_server, check_a11y, school, referent
):
    from portail.accounts.models import Profile, User
    from portail.accounts.provisioning import create_account
    from portail.directory.models import Function

    from .conftest import enrol, staff, totp_now

    admin = staff("regis.region", None, first_name="Régis", last_name="Région")
    Function.objects.create(user=admin, role=Function.Role.REGIONAL_ADMIN)
    enrol(admin)
    teacher = staff("claire.noir", school, first_name="Claire", last_name="Noir")
    kept = staff("lea.petit", school, first_name="Léa", last_name="Petit", email="l@example.org")
    folded, _ = create_account("Léa", "Petit", Profile.PERSONNEL, structures=[school])
    folded.email = "l@example.org"
    folded.save()

    context, page = new_page(chromium, live_server)
    page.goto("/console/")
    log_in(page, "regis.region", STRONG_PASSWORD)
    page.get_by_label("Code de vérification").fill(totp_now())
    page.get_by_role("button", name="Vérifier").click()

    page.get_by_role("link", name="Référents ENT").click()
    expect(page.get_by_role("heading", name="Référents ENT")).to_be_visible()
    check_a11y(page)
    page.get_by_label("Nom ou UAI de l’établissement").fill(school.uai)
    page.get_by_role("button", name="Rechercher un établissement").click()
    page.get_by_role("link", name=school.name).click()
    expect(page.get_by_role("cell", name="anne.martin")).to_be_visible()
    check_a11y(page)
    page.get_by_label("Nom ou identifiant").fill("noir")
    page.get_by_role("button", name="Rechercher").click()
    page.get_by_role("link", name="Nommer Claire Noir").click()
    check_a11y(page)
    page.get_by_role("button", name="Nommer référent").click()
    expect(page.get_by_text("Claire Noir est référent ENT")).to_be_visible()
    assert Function.objects.filter(user=teacher, structure=school).exists()
    page.get_by_role("link", name="Retirer Anne Martin").click()
    page.get_by_role("button", name="Retirer").click()
    expect(page.get_by_text("Anne Martin n’est plus référent ENT")).to_be_visible()
    check_a11y(page)
    assert not Function.objects.filter(user=referent).exists()

    page.get_by_role("link", name="Doublons possibles").click()
    check_a11y(page)
    page.get_by_role("link", name=re.compile("^Fusionner")).click()
    expect(page.get_by_role("heading", name="Fusionner deux comptes")).to_be_visible()
    check_a11y(page)
    expect(page.get_by_label("Léa Petit — lea.petit (Actif)")).to_be_checked()  # the activated one
    page.get_by_role("button", name="Fusionner").click()
    expect(page.get_by_text("Les comptes sont fusionnés")).to_be_visible()
    check_a11y(page)
    folded.refresh_from_db()
    assert folded.deactivated_at is not None
    assert User.objects.get(pk=kept.pk).deactivated_at is None
    context.close()
