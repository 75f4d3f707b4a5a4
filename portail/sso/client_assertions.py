"""private_key_jwt client authentication (RFC 7523 §2.2, §3; OIDC Core §9).

The client signs a short JWT with its own private key; the portal verifies it with the public
keys an administrator registered on the application (Application.oidc_jwks). No shared secret is
stored at all. Checked: signature (RS256, PS256, ES256), iss = sub = client_id, aud = the token
endpoint or the issuer, exp in the future and at most MAX_LIFETIME away, jti used once.
"""

import base64
import json
import time
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from jwcrypto import jwk, jwt
from jwcrypto.common import JWException
from oauth2_provider.models import AbstractApplication, get_application_model
from oauth2_provider.settings import oauth2_settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["RS256", "PS256", "ES256"]
# An assertion is made for one request, but client libraries sign them for an hour (Authlib's
# default): accepted up to that, which also bounds how long its jti is kept.
MAX_LIFETIME = 3600
SKEW = 60


def jwks_problem(text: str) -> str | None:
    """Why a registered JWKS is unusable (in French), or None."""
    try:
        keys = jwk.JWKSet.from_json(text)
    except (JWException, ValueError, TypeError):
        return 'JWKS invalide : un objet JSON {"keys": [...]} est attendu.'
    if not list(keys):
        return "JWKS vide."
    if any(key.has_private for key in keys):
        return "Le JWKS ne doit contenir que des clés publiques (jamais la clé privée du client)."
    return None


def _payload(assertion: str) -> dict | None:
    try:
        part = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def _audience_ok(audience) -> bool:
    issuer = oauth2_settings.OIDC_ISS_ENDPOINT
    accepted = {issuer, issuer + "/token/", issuer + "/token", issuer + "/introspect/"}
    accepted |= {issuer + "/revoke_token/"}
    values = audience if isinstance(audience, list) else [audience]
    return any(isinstance(value, str) and value in accepted for value in values)


def authenticate(request) -> bool:
    """Authenticate the oauthlib request's client by its assertion; sets request.client."""
    from .models import ClientAssertion

    assertion = getattr(request, "client_assertion", None)
    if getattr(request, "client_assertion_type", None) != ASSERTION_TYPE or not assertion:
        return False
    unverified = _payload(assertion)
    if unverified is None or not isinstance(unverified.get("iss"), str):
        return False
    client_id = unverified["iss"]
    if request.client_id and request.client_id != client_id:
        return False
    client = get_application_model().objects.filter(client_id=client_id).first()
    app = getattr(client, "portail_application", None) if client is not None else None
    if app is None or not app.oidc_jwks.strip():
        return False
    if client.client_type != AbstractApplication.CLIENT_CONFIDENTIAL:
        return False
    try:
        keys = jwk.JWKSet.from_json(app.oidc_jwks)
        token = jwt.JWT(
            jwt=assertion,
            key=keys,
            algs=ALGORITHMS,
            check_claims={"iss": client_id, "sub": client_id, "exp": None, "jti": None},
            expected_type="JWS",
        )
        claims = json.loads(token.claims)
    except (JWException, ValueError, TypeError):
        return False
    now = time.time()
    if not _audience_ok(claims.get("aud")) or float(claims["exp"]) > now + MAX_LIFETIME + SKEW:
        return False
    try:
        with transaction.atomic():
            ClientAssertion.objects.create(
                client=client,
                jti=str(claims["jti"])[:200],
                expires_at=datetime.fromtimestamp(float(claims["exp"]) + SKEW, tz=UTC),
            )
    except IntegrityError:
        return False  # RFC 7523 §3 (7): a jti seen before is a replay
    if int(now * 1000) % 50 == 0:  # now and then, the expired ones go
        ClientAssertion.objects.filter(expires_at__lte=datetime.now(tz=UTC)).delete()
    request.client = client
    request.client_id = client_id
    return True
