"""The seed's login page, clicked through in Chromium: wording, eye button, errors, remember-me."""

import re
import time

import pytest
from playwright.sync_api import expect

from portail.typography import either
from tests.e2e.helpers import log_in
from tests.helpers import STRONG_PASSWORD, WRONG

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_login_page_has_the_seed_wording_and_hints(page, a11y):
    page.goto("/auth/login")
    expect(page).to_have_title(re.compile("^Connexion"))
    expect(page.get_by_role("heading", level=1, name="Connexion")).to_be_visible()
    expect(page.get_by_label("Identifiant")).to_be_visible()
    expect(page.get_by_label("Mot de passe", exact=True)).to_have_attribute("type", "password")
    expect(page.get_by_label("Se souvenir de moi")).not_to_be_checked()
    expect(page.get_by_role("link", name="Besoin d'aide ?")).to_be_visible()
    expect(page.get_by_role("button", name="Connexion")).to_be_visible()
    expect(
        page.get_by_text("L'identifiant « prenom.nom » ne comporte ni majuscule, ni accent.")
    ).to_be_visible()
    expect(page.get_by_text("(minuscules et chiffres)")).to_be_visible()
    a11y(page)


def test_eye_button_shows_and_hides_the_password_by_mouse_and_keyboard(page, a11y):
    page.goto("/auth/login")
    password = page.get_by_label("Mot de passe", exact=True)
    password.fill("mon secret")
    show = page.get_by_role("button", name="Afficher le mot de passe")
    expect(show).to_have_attribute("aria-pressed", "false")

    show.click()
    expect(password).to_have_attribute("type", "text")
    hide = page.get_by_role("button", name="Masquer le mot de passe")
    expect(hide).to_have_attribute("aria-pressed", "true")
    expect(password).to_have_value("mon secret")
    a11y(page)  # the pressed state is accessible too

    hide.click()
    expect(password).to_have_attribute("type", "password")

    # Keyboard only: Tab from the password field reaches the eye button; Space and Enter press it.
    password.focus()
    page.keyboard.press("Tab")
    expect(show).to_be_focused()
    page.keyboard.press("Space")
    expect(password).to_have_attribute("type", "text")
    expect(page.get_by_role("button", name="Masquer le mot de passe")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.keyboard.press("Enter")
    expect(password).to_have_attribute("type", "password")
    expect(show).to_have_attribute("aria-pressed", "false")
    # Pressing the eye never submits the form.
    expect(page).to_have_url(re.compile(r"/auth/login$"))


def test_password_field_accepts_paste(page, a11y, context):
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/auth/login")
    a11y(page)
    page.evaluate("navigator.clipboard.writeText('collé depuis un gestionnaire')")
    password = page.get_by_label("Mot de passe", exact=True)
    password.focus()
    page.keyboard.press("ControlOrMeta+V")
    expect(password).to_have_value("collé depuis un gestionnaire")


@pytest.mark.parametrize(
    "identifier,password",
    [("jean.dupont", "pas le bon mot de passe"), ("personne.inconnue", STRONG_PASSWORD)],
    ids=["wrong-password", "unknown-identifier"],
)
def test_wrong_credentials_show_one_message(page, a11y, active_user, identifier, password):
    page.goto("/auth/login")
    a11y(page)
    log_in(page, identifier, password)
    expect(page.get_by_role("alert")).to_contain_text(either(WRONG))
    # The identifier stays typed; the password does not.
    expect(page.get_by_label("Identifiant")).to_have_value(identifier)
    expect(page.get_by_label("Mot de passe", exact=True)).to_have_value("")
    a11y(page)


def test_login_leads_home_with_name_profile_school_then_logout(page, a11y, active_user):
    page.goto("/auth/login")
    a11y(page)
    log_in(page, "  Jean.DUPONT ", STRONG_PASSWORD)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Jean Dupont")
    expect(page.get_by_text("Parent", exact=True)).to_be_visible()
    expect(page.get_by_text("Lycée Claude Monet")).to_be_visible()
    a11y(page)

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(re.compile(r"/auth/login$"))
    expect(page.get_by_role("heading", level=1, name="Connexion")).to_be_visible()
    # The session is over on the server: home sends back to the login page.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=/$"))
    a11y(page)


def session_cookie(context, settings):
    return next(c for c in context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)


def test_session_ends_with_browser_unless_remember_me(page, a11y, context, active_user, settings):
    page.goto("/auth/login")
    a11y(page)
    log_in(page, "jean.dupont", STRONG_PASSWORD)
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    a11y(page)
    cookie = session_cookie(context, settings)
    assert cookie["expires"] == -1, "a session cookie (ends with the browser)"
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    page.get_by_role("button", name="Se déconnecter").click()
    log_in(page, "jean.dupont", STRONG_PASSWORD, remember=True)
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    lasts = session_cookie(context, settings)["expires"] - time.time()
    days = settings.PORTAIL_REMEMBER_ME_DAYS
    assert days * 86400 - 3600 < lasts <= days * 86400 + 60, lasts / 86400


def test_help_page_offers_the_two_choices_and_the_way_back(page, a11y):
    page.goto("/auth/login")
    a11y(page)
    page.get_by_role("link", name="Besoin d'aide ?").click()
    expect(page.get_by_role("heading", level=1, name="Besoin d'aide ?")).to_be_visible()
    expect(
        page.get_by_text(
            "Fournissez simplement les informations suivantes et nous vous aiderons à accéder à votre compte."
        )
    ).to_be_visible()
    expect(page.get_by_role("link", name="Vous avez perdu votre mot de passe ?")).to_be_visible()
    expect(page.get_by_role("link", name="Vous avez perdu votre identifiant ?")).to_be_visible()
    a11y(page)
    page.get_by_role("link", name="Retour à l'écran d'accueil").click()
    expect(page).to_have_url(re.compile(r"/auth/login$"))


def test_login_page_fits_a_phone(mobile_page, a11y, active_user):
    page = mobile_page
    page.goto("/auth/login")
    a11y(page)
    # Nothing wider than the screen: no horizontal scrolling on a 390 px phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for control in [
        page.get_by_label("Identifiant"),
        page.get_by_label("Mot de passe", exact=True),
        page.get_by_role("button", name="Afficher le mot de passe"),
        page.get_by_role("button", name="Connexion"),
    ]:
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    # Touch targets: WCAG 2.2 SC 2.5.8 asks at least 24x24 CSS px; the eye button gives 44.
    eye = page.get_by_role("button", name="Afficher le mot de passe").bounding_box()
    assert eye["width"] >= 44 and eye["height"] >= 24, eye
    page.get_by_label("Identifiant").tap()
    page.keyboard.type("jean.dupont")
    page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Connexion").tap()
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    a11y(page)


def test_axe_check_fails_on_a_real_violation(page, a11y):
    # The helper itself: an unlabelled field and a nameless button must make it fail.
    page.goto("/auth/login")
    page.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend',"
        " '<input type=text><button type=button></button>')"
    )
    with pytest.raises(pytest.fail.Exception) as failure:
        a11y(page)
    assert "label" in str(failure.value) and "button-name" in str(failure.value)


def test_help_and_recovery_pages_fit_a_phone(mobile_page, a11y):
    page = mobile_page
    for path in ["/auth/help", "/auth/lost-password", "/auth/lost-identifier", "/page-inconnue"]:
        page.goto(path)
        a11y(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        button = page.get_by_role("link", name="Retour à l'écran d'accueil")
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (path, box)
