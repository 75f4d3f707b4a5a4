"""Portal logout as OpenID Connect relying parties see it.

Each client authorized in the portal session is remembered in that session. At logout its tokens
for this user are revoked (userinfo and refresh stop working at once), and, when the
administrator gave a back-channel logout URI, it receives a signed logout token
(OpenID Connect Back-Channel Logout 1.0 §2.4) so it can end its own session.
"""

import json
import logging
import time
import uuid

from jwcrypto import jwk, jwt
from oauth2_provider.models import AccessToken, RefreshToken
from oauth2_provider.settings import oauth2_settings

from . import outbound
from .models import Application

log = logging.getLogger(__name__)

OIDC_CLIENTS_SESSION_KEY = "sso_oidc_clients"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def remember_client(session, client_id: str):
    clients = session.get(OIDC_CLIENTS_SESSION_KEY, [])
    if client_id not in clients:
        session[OIDC_CLIENTS_SESSION_KEY] = [*clients, client_id][-50:]


def logout_token(client_id: str, user) -> str:
    key = jwk.JWK.from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY.encode())
    now = int(time.time())
    claims = {
        "iss": oauth2_settings.OIDC_ISS_ENDPOINT,
        "aud": client_id,
        "iat": now,
        # Back-Channel Logout §2.4: short-lived; two minutes absorb clock skew.
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        "sub": str(user.pk),
        "events": {BACKCHANNEL_EVENT: {}},
    }
    token = jwt.JWT(
        header={"alg": "RS256", "kid": key.thumbprint(), "typ": "logout+jwt"},
        claims=json.dumps(claims),
    )
    token.make_signed_token(key)
    return token.serialize()


def notify_backchannel(app, user) -> bool:
    """POST a logout token to the application's back-channel logout URI, if it has one."""
    if not app.oidc_backchannel_logout_uri or app.oidc_client is None:
        return False
    status = outbound.call(
        app.oidc_backchannel_logout_uri,
        form={"logout_token": logout_token(app.oidc_client.client_id, user)},
    )
    if status is not None and 200 <= status < 300:
        return True
    log.info("OIDC back-channel logout not delivered to %s", app.name)
    return False


def end_oidc_sessions(session, user) -> int:
    """Revoke the user's tokens of each client used in this session; notify back-channels."""
    client_ids = session.get(OIDC_CLIENTS_SESSION_KEY) or []
    if not client_ids or user is None:
        return 0
    notified = 0
    apps = Application.objects.filter(oidc_client__client_id__in=client_ids).select_related(
        "oidc_client"
    )
    for app in apps:
        client = app.oidc_client
        RefreshToken.objects.filter(user=user, application=client).delete()
        AccessToken.objects.filter(user=user, application=client).delete()
        notified += notify_backchannel(app, user)
    session.pop(OIDC_CLIENTS_SESSION_KEY, None)
    return notified
