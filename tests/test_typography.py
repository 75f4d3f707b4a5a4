"""French typography (portail.typography): the checker itself, and every mail of the public side
rendered and checked. The public pages are checked in the browser, in every state of
tests/public_pages.py (tests/e2e/test_public_pages_browser.py).

To extend to the console: add its mail templates to MAILS, its pages to tests/public_pages.py (or
a list of its own walked the same way).
"""

import pytest
from django.template.loader import render_to_string

from portail.typography import (
    NBSP,
    SEED_VERBATIM,
    either,
    fix,
    normalise,
    normalised,
    problems,
    visible_text,
)

ACCOUNT = {
    "first_name": "Léa",
    "last_name": "Martin",
    "identifier": "lea.martin",
    "schools": "Lycée Claude Monet",
}
CONTEXT = {
    "first_name": "Léa",
    "last_name": "Martin",
    "identifier": "lea.martin",
    "region": "Exemple",
    "base_url": "https://ent.example.test",
    "link": "https://ent.example.test/auth/reset/abc",
    "days": 14,
    "minutes": 60,
    "changed_at": "30/11/2026 à 14:30",
    "accounts": [ACCOUNT, {**ACCOUNT, "first_name": "Hugo", "identifier": "hugo.martin"}],
}
MAILS = [
    f"mail/{name}{suffix}"
    for name in [
        "activation_link",
        "identifier_reminder",
        "password_changed",
        "password_reset",
        "account_email_changed",
        "account_password_changed",
    ]
    for suffix in (".txt", ".html", ".subject.txt")
    if not (name.startswith("account_") and suffix == ".subject.txt")
]


def test_the_checker_finds_what_french_typography_misses():
    found = problems(
        "Votre identifiant : jean. Besoin d'aide ? Le « code » de l'ENT de la 1ère connexion, en 2nde."
    )
    kinds = {p.kind for p in found}
    assert kinds == {
        "apostrophe droite (’)",
        "espace insécable après « « »",
        "espace insécable avant « : »",
        "espace insécable avant « ? »",
        "espace insécable avant « » »",
        "ordinal (1re, 2de, 3e)",
    }
    assert len([p for p in found if p.kind.startswith("ordinal")]) == 2
    # Technical text glued to its colon or question mark is not prose.
    assert problems("https://ent.example.test/auth/login?next=/ 14:30") == []


def test_the_fixer_repairs_and_keeps_the_seeds_verbatim_wording_and_the_markup():
    fixed = fix(
        "<p class=\"a\">Votre identifiant : {{ x|default:'y' }} l'ENT « ici » ; 1<sup>ère</sup> Besoin d'aide ?</p>"
    )
    assert fixed == (
        f"<p class=\"a\">Votre identifiant{NBSP}: {{{{ x|default:'y' }}}} l’ENT «{NBSP}ici{NBSP}»{NBSP}; "
        f"1<sup>re</sup> Besoin d'aide{NBSP}?</p>"
    )
    assert problems(visible_text(fixed)) == []
    for phrase in SEED_VERBATIM:
        assert problems(fix(phrase)) == [], phrase


def test_comparisons_read_either_typography():
    page = normalised(f"L’identifiant{NBSP}: jean")
    assert "L'identifiant : jean" in page and "L’identifiant\u00a0: jean" in page
    assert normalise("d’un «\u00a0mot\u00a0»") == "d'un « mot »"
    assert either("L'identifiant : jean").search(f"L’identifiant{NBSP}: jean")


@pytest.mark.parametrize("template", MAILS)
def test_every_mail_is_in_french_typography(template):
    for by_first_name in (False, True):
        rendered = render_to_string(template, {**CONTEXT, "by_first_name": by_first_name})
        text = visible_text(rendered) if template.endswith(".html") else rendered
        found = problems(text)
        assert not found, f"{template}: " + "; ".join(map(str, found))
