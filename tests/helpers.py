"""What many tests do alike: read a page, log in through the form, make an account."""

import html

from portail.accounts.models import Profile, State, User
from portail.typography import normalised

STRONG_PASSWORD = "cheval orange batterie agrafe"
LOGIN = "/auth/login"
# The one message for a wrong identifier and a wrong password.
WRONG = "L'identifiant ou le mot de passe est incorrect."


def text(response):
    """The page as the user reads it: HTML entities decoded; French typography (NBSP, ’) read as
    the seed's plain spaces and apostrophes (portail.typography.normalise), so the seed's wording
    is compared word for word whatever the typography."""
    return normalised(html.unescape(response.content.decode()))


def login(client, identifier, password, remember=False, **extra):
    """POST the login form; `extra` goes to the test client (headers, secure=...)."""
    data = {"identifier": identifier, "password": password}
    if remember:
        data["remember"] = "on"
    return client.post(LOGIN, data, **extra)


def account(identifier, first_name, last_name, email="", structures=(), password=None, **fields):
    """An account, active pupil unless `fields` say otherwise; no password unless given."""
    user = User.objects.create_user(
        identifier,
        password,
        first_name=first_name,
        last_name=last_name,
        profile=fields.pop("profile", Profile.ELEVE),
        state=fields.pop("state", State.ACTIVE),
        email=email,
        **fields,
    )
    user.structures.set(structures)
    return user
