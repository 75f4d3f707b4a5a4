"""What the password login and logout views ask of the federation (a small, explicit surface)."""

import logging
import time

from django.conf import settings

from portail.accounts.models import Profile
from portail.accounts.services import DomainError

log = logging.getLogger(__name__)

# Session keys.
STATE = "federation_login"  # how this session was opened, for the logout there
PENDING_LINK = "franceconnect_pending"  # a FranceConnect identity waiting for the password


class LinkRefused(DomainError):
    message = (
        "La connexion avec FranceConnect est réservée aux parents d’élèves. Votre compte "
        "n’a pas été lié à FranceConnect : connectez-vous avec votre identifiant et votre mot "
        "de passe, ou avec ÉduConnect si votre établissement le propose."
    )


def pending_link(request) -> dict | None:
    """The FranceConnect identity this session holds for linking, if still fresh."""
    pending = request.session.get(PENDING_LINK)
    if not pending:
        return None
    if time.time() - pending.get("at", 0) > settings.PORTAIL_FRANCECONNECT_LINK_MINUTES * 60:
        request.session.pop(PENDING_LINK, None)
        return None
    return pending


def check_pending_link(request, result) -> None:
    """Before a password (or activation code) login opens a session that holds a FranceConnect
    identity to link: only a parent's account may take it (issue 11, §3)."""
    if pending_link(request) is None:
        return
    user = getattr(result, "user", result)  # ActivationRequired carries the account
    if user.profile != Profile.PARENT:
        request.session.pop(PENDING_LINK, None)
        from portail.audit.services import record

        record("federation.franceconnect.link_refused", request=request, target=user)
        raise LinkRefused


def leaving_page(request, url: str, name: str, title: str):
    """Send the browser to the federation from a form's answer: a page that moves on by itself
    (meta refresh), because the form page's CSP form-action 'self' blocks a cross-site redirect
    (Chromium and Firefox apply it to the redirects of a form submission)."""
    from django.shortcuts import render

    response = render(
        request, "federation/leaving.html", {"url": url, "name": name, "title": title}
    )
    # Where it moves on to, for the SAML IdP's front-channel logout page (FrontChannelLogoutMiddleware)
    # when the logout also leaves for ÉduConnect or FranceConnect: the frames first, then there.
    response.moves_on_to = url
    return response


def federated_logout_url(request) -> tuple[str, str] | None:
    """(URL, name) where the browser goes after the portal's logout: the IdP's or OP's own
    logout, when this session was opened through it and it publishes one; else None."""
    state = request.session.get(STATE)
    if not state:
        return None
    try:
        if state.get("method") == "educonnect":
            from . import educonnect

            url = educonnect.logout_redirect(state)
            return (url, "ÉduConnect") if url else None
        if state.get("method") == "franceconnect":
            from . import franceconnect

            url = franceconnect.logout_url(state.get("id_token", ""))
            return (url, "FranceConnect") if url else None
    except Exception:  # the local logout must happen whatever the federation's state
        log.exception("federated logout URL")
    return None
