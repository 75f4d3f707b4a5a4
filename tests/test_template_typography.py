"""French typography in every template outside the console (issue 10): the home page, « Mon compte »,
the SSO pages (OIDC consent and logout confirmation, CAS), the federation's pages, the error pages,
the mails, the messages of the modules users read, and the demo applications' pages.
tests/console/test_typography.py checks the console's.

The template's text (what is left once tags and template code are taken out) goes through
portail.typography.problems, which keeps the help page's verbatim phrases (SEED_VERBATIM)."""

import re
from pathlib import Path

import pytest

from portail.typography import problems
from tests.console.test_typography import FAULTS, python_messages, template_text

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(
    p
    for p in (ROOT / "portail").rglob("*")
    if p.suffix in (".html", ".txt")
    and "templates" in p.parts
    and "console" not in p.parts  # tests/console/test_typography.py
)


def _id(path):
    return str(path.relative_to(ROOT / "portail"))


def test_the_list_covers_the_pages_named_in_the_issue():
    names = {_id(p) for p in TEMPLATES}
    for name in (
        "templates/accounts/home.html",
        "templates/accounts/account.html",
        "templates/accounts/account_sessions.html",
        "sso/templates/oauth2_provider/authorize.html",
        "sso/templates/oauth2_provider/logout_confirm.html",
        "sso/templates/sso/continue.html",
        "federation/login/templates/federation/login_buttons.html",
        "profile/templates/mail/account_new_device.html",
    ):
        assert name in names


@pytest.mark.parametrize("path", TEMPLATES, ids=_id)
def test_templates_follow_french_typography(path):
    # Each piece of text on its own: a tag between two words is no place for a typographic fault.
    found = [str(p) for text in template_text(path) for p in problems(text)]
    assert not found, found


# Modules whose messages users read (flash messages, refusals, form errors). portail/sso/oidc.py and
# views.py are not listed yet; models.py and admin.py neither (names and help texts, for référents).
MESSAGE_MODULES = [
    ROOT / "portail" / name
    for name in (
        "accounts/phones.py",
        "accounts/services.py",
        "federation/idp/services.py",
        "federation/login/hooks.py",
        "federation/login/services.py",
        "federation/login/signals.py",
        "federation/login/views.py",
        "profile/views.py",
        "sso/cas_rest.py",
    )
]
FRENCH = re.compile(r"[éèàçêùâôîÉÀ«»]|\b(le|la|les|de|du|des|votre|vous|pas|est)\b")


@pytest.mark.parametrize("path", MESSAGE_MODULES, ids=_id)
def test_messages_follow_french_typography(path):
    found = []
    for literal in python_messages(path):
        prefix = len(literal) - len(literal.lstrip("rbfRBF"))
        body = re.sub(r"\{[^}]*\}", "", literal[prefix + 1 : -1])  # f-string code is not text
        if FRENCH.search(body):
            found += [f"{p} in {literal[:60]}" for p in problems(body)]
    assert not found, found


@pytest.mark.parametrize("path", [ROOT / "demo" / "apps.py"], ids=["demo/apps.py"])
def test_demo_pages_follow_french_typography(path):
    faults = [
        (why, literal[:80])
        for literal in python_messages(path)
        for pattern, why in FAULTS
        if pattern.search(literal.replace("scope='row'", "").replace("session['name']", ""))
    ]
    assert not faults, faults


def test_the_check_finds_a_fault_and_keeps_the_seed_wording():
    assert problems("Se déconnecter de l'ENT ?")
    assert not problems("<p>Besoin d'aide\u00a0? Retour à l'écran d'accueil</p>")
