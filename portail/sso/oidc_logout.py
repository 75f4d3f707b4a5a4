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

from django.db.models import Q
from jwcrypto import jwk, jwt
from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken
from oauth2_provider.settings import oauth2_settings

from . import outbound, privacy
from .models import Application, AuthorizationTime

log = logging.getLogger(__name__)

OIDC_CLIENTS_SESSION_KEY = "sso_oidc_clients"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def remember_client(session, client_id: str):
    clients = session.get(OIDC_CLIENTS_SESSION_KEY, [])
    if client_id not in clients:
        session[OIDC_CLIENTS_SESSION_KEY] = [*clients, client_id][-50:]


def logout_token(client, user, sid: str = "") -> str:
    key = jwk.JWK.from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY.encode())
    now = int(time.time())
    claims = {
        "iss": oauth2_settings.OIDC_ISS_ENDPOINT,
        "aud": client.client_id,
        "iat": now,
        # Back-Channel Logout §2.4: short-lived; two minutes absorb clock skew.
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        # The application's own pairwise identifier (privacy.py), as in its ID tokens.
        "sub": privacy.subject_for_client(user.pk, client),
        "events": {BACKCHANNEL_EVENT: {}},
    }
    if sid:
        # §2.4: with sid, only the application sessions of that portal session end.
        claims["sid"] = sid
    token = jwt.JWT(
        header={"alg": "RS256", "kid": key.thumbprint(), "typ": "logout+jwt"},
        claims=json.dumps(claims),
    )
    token.make_signed_token(key)
    return token.serialize()


def notify_backchannel(app, user, sid: str = "") -> bool:
    """POST a logout token to the application's back-channel logout URI, if it has one."""
    if not app.oidc_backchannel_logout_uri or app.oidc_client is None:
        return False
    status = outbound.call(
        app.oidc_backchannel_logout_uri,
        form={"logout_token": logout_token(app.oidc_client, user, sid)},
    )
    if status is not None and 200 <= status < 300:
        return True
    log.info("OIDC back-channel logout not delivered to %s", app.name)
    return False


def revoke_grant(client, user=None, sid: str = "") -> int:
    """Revoke a client's codes and tokens: those granted in portal session `sid`, or, without
    one, all of the user's. Returns how many refresh tokens were revoked."""
    refresh = RefreshToken.objects.filter(application=client)
    access = AccessToken.objects.filter(application=client)
    grants = Grant.objects.filter(application=client)
    if sid:
        of_session = AuthorizationTime.objects.filter(sid=sid)
        families = of_session.exclude(token_family=None).values("token_family")
        refresh = refresh.filter(token_family__in=families)
        access = access.filter(
            Q(refresh_token__token_family__in=families)
            | Q(source_refresh_token__token_family__in=families)
        )
        grants = grants.filter(pk__in=of_session.exclude(grant=None).values("grant"))
    elif user is not None:
        refresh, access, grants = (q.filter(user=user) for q in (refresh, access, grants))
    else:
        return 0
    access_ids = list(access.values_list("pk", flat=True))
    id_token_ids = list(access.exclude(id_token=None).values_list("id_token", flat=True))
    revoked, _ = refresh.delete()
    AccessToken.objects.filter(pk__in=access_ids).delete()
    IDToken.objects.filter(pk__in=id_token_ids).delete()
    grants.delete()
    return revoked


def end_oidc_sessions(session, user) -> int:
    """Revoke what each client used in this session got in it; notify back-channels.

    Back-Channel Logout §2.4: with the session's sid, only this portal session's grants end (the
    same user's other browsers keep theirs); a session without one (older) ends all of them.
    """
    client_ids = session.get(OIDC_CLIENTS_SESSION_KEY) or []
    if not client_ids or user is None:
        return 0
    sid = session.get(privacy.SID_SESSION_KEY, "")
    notified = 0
    apps = Application.objects.filter(oidc_client__client_id__in=client_ids).select_related(
        "oidc_client"
    )
    for app in apps:
        revoke_grant(app.oidc_client, user, sid)
        notified += notify_backchannel(app, user, sid)
    session.pop(OIDC_CLIENTS_SESSION_KEY, None)
    return notified
