"""Every public page and state, in one list: the browser tests (tests/e2e/test_public_pages_browser.py),
the typography test (tests/test_typography.py) and `make screenshots` (tools/screenshots.py) all
walk it. Add a page here and it is checked at 1280 and 375 px, by axe-core, for French typography,
and photographed.

A page is a path, optionally followed by steps a user takes (fill a field, press a button) to reach
a state such as an error. `account="pending"` first logs in with a pending account's activation
code (the « Première connexion » page); `account="user"` logs in an active account (the home page
with its tiles, « Mon compte »); `account="referent"` logs in a référent ENT with the second factor
(the console's pages).
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PublicPage:
    name: str  # also the screenshot's file name
    path: str
    # ("fill", label, value) | ("click", button name) | ("follow", CSS selector of a link)
    steps: tuple = field(default=())
    status: int = 200
    account: str = ""  # "pending" | "user" | "referent": who logs in first
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
    # Logged in: the home page's tiles, « Mon compte », the OpenID Connect logout confirmation.
    PublicPage("accueil", "/", account="user"),
    PublicPage("mon-compte", "/compte/", account="user"),
    PublicPage("deconnexion-application", "/o/logout/", account="user"),
    # The référent's console (tests/e2e/test_console_pages_browser.py walks its other states).
    PublicPage("console-recherche", "/console/", account="referent"),
    PublicPage(
        "console-compte",
        "/console/",
        account="referent",
        steps=(("follow", "td[data-label='Nom'] a"),),
    ),
    PublicPage("console-fiches", "/console/fiches", account="referent"),
    PublicPage("console-import", "/console/import", account="referent"),
    PublicPage("console-journal", "/console/journal", account="referent"),
]

SIZES = {"ordinateur": (1280, 800), "telephone": (375, 740)}


def log_in(page, identifier, password, on_page=None):
    if on_page:
        on_page(page)
    page.get_by_label("Identifiant").fill(identifier)
    page.get_by_label("Mot de passe", exact=True).fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Connexion").click()


def visit(page, public_page, pending=None, on_page=None, logins=None):
    """Brings a Playwright page to this state. `pending`: (identifier, code) of a pending account;
    `logins`: {"user": (identifier, password), "referent": (identifier, password, totp)} where
    totp() gives the current second-factor code (None: the context is logged in already, as a
    second factor code is not accepted twice); `on_page(page)` is called on each page passed on
    the way (the tests' axe-core check)."""
    response = None
    if public_page.account == "pending":
        identifier, code = pending
        page.goto("/auth/login")
        log_in(page, identifier, code, on_page)
        page.wait_for_url("**/auth/activation")
    elif public_page.account in ("user", "referent") and logins[public_page.account] is None:
        response = page.goto(public_page.path)  # the context is logged in already
    elif public_page.account == "user":
        page.goto("/auth/login")
        log_in(page, *logins["user"], on_page)
        if on_page:
            on_page(page)  # the home page the login leads to
        response = page.goto(public_page.path)
    elif public_page.account == "referent":
        identifier, password, totp = logins["referent"]
        page.goto("/console/")
        log_in(page, identifier, password, on_page)
        if on_page:
            on_page(page)
        page.get_by_label("Code de vérification").fill(totp())
        with page.expect_navigation():
            page.get_by_role("button", name="Vérifier").click()
        if on_page:
            on_page(page)  # the console's search page the second factor leads to
        response = page.goto(public_page.path)
    else:
        response = page.goto(public_page.path)
    for step in public_page.steps:
        if on_page and step[0] in ("click", "follow"):
            on_page(page)
        if step[0] == "fill":
            page.get_by_label(step[1], exact=True).fill(step[2])
        elif step[0] == "click":
            with page.expect_navigation():
                page.get_by_role("button", name=step[1], exact=True).click()
        elif step[0] == "follow":
            with page.expect_navigation():
                page.locator(step[1]).first.click()
    page.wait_for_load_state("load")
    return response
