"""Every public page and state, in one list: the browser tests (tests/e2e/test_public_pages_browser.py),
the typography test (tests/test_typography.py) and `make screenshots` (tools/screenshots.py) all
walk it. Add a page here and it is checked at 1280 and 375 px, by axe-core, for French typography,
and photographed.

A page is a path, optionally followed by steps a user takes (fill a field, press a button) to reach
a state such as an error. `account="pending"` first logs in with a pending account's activation
code (the « Première connexion » page).
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PublicPage:
    name: str  # also the screenshot's file name
    path: str
    steps: tuple = field(default=())  # ("fill", label, value) | ("click", button name)
    status: int = 200
    account: str = ""  # "pending": log in with the activation code first
    errors: bool = False  # the state shows the error summary


WRONG_LOGIN = (
    ("fill", "Identifiant", "jean.dupont"),
    ("fill", "Mot de passe", "pas le bon mot de passe"),
    ("click", "Connexion"),
)

PUBLIC_PAGES = [
    PublicPage("connexion", "/auth/login"),
    PublicPage("connexion-erreur", "/auth/login", steps=WRONG_LOGIN, errors=True),
    PublicPage(
        "connexion-champs-vides", "/auth/login", steps=(("click", "Connexion"),), errors=True
    ),
    PublicPage("aide", "/auth/help"),
    PublicPage("mot-de-passe-perdu", "/auth/lost-password"),
    PublicPage(
        "mot-de-passe-perdu-erreur",
        "/auth/lost-password",
        steps=(("fill", "Identifiant", "personne.inconnue"), ("click", "Envoyer")),
        errors=True,
    ),
    PublicPage("identifiant-perdu", "/auth/lost-identifier"),
    PublicPage(
        "identifiant-perdu-erreur",
        "/auth/lost-identifier",
        steps=(("fill", "Adresse de messagerie", "pas-une-adresse"), ("click", "Envoyer")),
        errors=True,
    ),
    PublicPage("lien-de-reinitialisation-invalide", "/auth/reset/lien-inconnu"),
    PublicPage("lien-d-activation-invalide", "/auth/activation/lien/lien-inconnu"),
    PublicPage("premiere-connexion", "/auth/activation", account="pending"),
    PublicPage(
        "premiere-connexion-erreur",
        "/auth/activation",
        account="pending",
        steps=(("click", "Activer mon compte"),),
        errors=True,
    ),
    PublicPage("charte", "/charte"),
    PublicPage("mentions-legales", "/mentions-legales"),
    PublicPage("accessibilite", "/accessibilite"),
    PublicPage("donnees-personnelles", "/donnees-personnelles"),
    PublicPage("page-introuvable", "/page-qui-n-existe-pas", status=404),
]

SIZES = {"ordinateur": (1280, 800), "telephone": (375, 740)}


def visit(page, public_page, pending=None, on_page=None):
    """Brings a Playwright page to this state. `pending`: (identifier, code) of a pending account;
    `on_page(page)` is called on each page passed on the way (the tests' axe-core check)."""
    if public_page.account == "pending":
        identifier, code = pending
        page.goto("/auth/login")
        if on_page:
            on_page(page)
        page.get_by_label("Identifiant").fill(identifier)
        page.get_by_label("Mot de passe", exact=True).fill(code)
        page.get_by_role("button", name="Connexion").click()
        page.wait_for_url("**/auth/activation")
        response = None
    else:
        response = page.goto(public_page.path)
    for step in public_page.steps:
        if on_page and step[0] == "click":
            on_page(page)
        if step[0] == "fill":
            page.get_by_label(step[1], exact=True).fill(step[2])
        elif step[0] == "click":
            with page.expect_navigation():
                page.get_by_role("button", name=step[1], exact=True).click()
    page.wait_for_load_state("load")
    return response
