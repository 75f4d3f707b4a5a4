"""What applications learn of a user's identity: pairwise subjects, sessions, authentication.

Pairwise subject identifiers (OIDC Core §8.1): each application (or each sector, when an
administrator groups applications under one sector identifier) sees its own identifier for a
user, HMAC-SHA256(PORTAIL_PAIRWISE_SALT, sector + the account's primary key). The key never
leaves the server and the primary key never changes (a rename keeps it), so the identifier is
stable across logins and renames, yet two applications cannot correlate a pupil by comparing
them. Derived, not stored: no lookup on the userinfo or validation path. The CAS side gives the
same kind of identifier as cas:user to services set to « identifiant opaque ».

Session identifier (OIDC Back-Channel Logout §2.4 `sid`): random, one per portal session, carried
by the ID tokens of that session and by the logout tokens sent when it ends, and kept with each
refresh-token family so that ending one session revokes only the tokens it granted.
"""

import base64
import hashlib
import hmac
import secrets

from django.conf import settings

SID_SESSION_KEY = "sso_sid"
# Set in the session by the console when its second factor (TOTP) was passed.
SECOND_FACTOR_SESSION_KEY = "console_verified_user"

# OIDC Core §2 acr: our two levels (password; password and TOTP).
ACR_PASSWORD = "urn:portail:acr:pwd"
ACR_SECOND_FACTOR = "urn:portail:acr:mfa"


def sector_of(app=None, client_id: str = "") -> str:
    """The sector an application's identifiers are computed in.

    Its sector identifier when the administrator set one (several applications of one publisher
    may then share identifiers, OIDC Core §8.1), otherwise the application itself.
    """
    if app is not None:
        if app.pairwise_sector:
            return "sector:" + app.pairwise_sector.strip().lower()
        return f"app:{app.pk}"
    return "client:" + client_id


def pairwise_subject(user_pk, sector: str) -> str:
    mac = hmac.new(
        settings.PORTAIL_PAIRWISE_SALT.encode(),
        f"{sector}\x00{user_pk}".encode(),
        hashlib.sha256,
    ).digest()
    # 43 characters of base64url: within OIDC's 255-character limit, [A-Za-z0-9_-] only.
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def subject_for_client(user_pk, client) -> str:
    """The `sub` a django-oauth-toolkit client sees for this user."""
    # A client without a Portail application: the reverse relation raises an AttributeError.
    app = getattr(client, "portail_application", None) if client is not None else None
    return pairwise_subject(user_pk, sector_of(app, getattr(client, "client_id", "")))


def session_id(session) -> str:
    """This portal session's `sid`, created on first use."""
    sid = session.get(SID_SESSION_KEY)
    if not sid:
        sid = session[SID_SESSION_KEY] = secrets.token_urlsafe(24)
    return sid


def authentication_methods(session, user) -> list[str]:
    """RFC 8176 amr values of this session: the password, and the console's TOTP if passed."""
    methods = ["pwd"]
    if user is not None and session.get(SECOND_FACTOR_SESSION_KEY) == user.pk:
        methods += ["otp", "mfa"]
    return methods


def acr_of(amr) -> str:
    return ACR_SECOND_FACTOR if "mfa" in (amr or []) else ACR_PASSWORD
