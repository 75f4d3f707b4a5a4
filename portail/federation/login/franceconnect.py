"""The portal as an OpenID Connect relying party of FranceConnect (issue 11, §3).

Authorization code flow with PKCE (S256), state and nonce held in the session; the code is
exchanged at the token endpoint (client_secret_post) through the outbound guard; the ID token's
signature is checked by jwcrypto against the provider's JWKS (asymmetric algorithms only, the
`alg` of each key), then iss, aud, exp, iat and nonce, and acr when PORTAIL_FRANCECONNECT_ACR
is set. No hand-written JWS verification.
"""

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from jwcrypto import jwk, jwt
from jwcrypto.common import JWException

from .fetch import FetchError, fetch_json

DISCOVERY_CACHE_SECONDS = 3600
# FranceConnect v2 signs ID tokens with RS256 or ES256; HS256 (v1, the client secret) is refused.
ALGORITHMS = ["RS256", "ES256", "PS256"]


class Refused(Exception):
    """A callback that is not accepted; the text is for the log, never shown."""


def enabled() -> bool:
    return bool(
        settings.PORTAIL_FRANCECONNECT_ISSUER
        and settings.PORTAIL_FRANCECONNECT_CLIENT_ID
        and settings.PORTAIL_FRANCECONNECT_CLIENT_SECRET
    )


def redirect_uri() -> str:
    return settings.PORTAIL_BASE_URL + reverse("federation_login:franceconnect-callback")


def post_logout_redirect_uri() -> str:
    return settings.PORTAIL_BASE_URL + reverse("accounts:login")


def discovery() -> dict:
    issuer = settings.PORTAIL_FRANCECONNECT_ISSUER
    key = "federation:fc:discovery:" + hashlib.sha256(issuer.encode()).hexdigest()
    document = cache.get(key)
    if document is None:
        document = fetch_json(issuer + "/.well-known/openid-configuration")
        if document.get("issuer", "").rstrip("/") != issuer:  # OIDC Discovery §4.3
            raise FetchError("the discovery document names another issuer")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(field), str):
                raise FetchError(f"the discovery document has no {field}")
        cache.set(key, document, DISCOVERY_CACHE_SECONDS)
    return document


def _jwks(refresh: bool = False) -> jwk.JWKSet:
    uri = discovery()["jwks_uri"]
    key = "federation:fc:jwks:" + hashlib.sha256(uri.encode()).hexdigest()
    text = None if refresh else cache.get(key)
    if text is None:
        text = json.dumps(fetch_json(uri))
        cache.set(key, text, DISCOVERY_CACHE_SECONDS)
    return jwk.JWKSet.from_json(text)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def begin() -> tuple[dict, str]:
    """(what the session keeps, URL of the provider's authorization endpoint)."""
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(48)  # RFC 7636 §4.1: 43 to 128 characters
    params = {
        "response_type": "code",
        "client_id": settings.PORTAIL_FRANCECONNECT_CLIENT_ID,
        "redirect_uri": redirect_uri(),
        "scope": settings.PORTAIL_FRANCECONNECT_SCOPES,
        "state": state,
        "nonce": nonce,
        "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
    }
    if settings.PORTAIL_FRANCECONNECT_ACR:
        params["acr_values"] = settings.PORTAIL_FRANCECONNECT_ACR
    kept = {"state": state, "nonce": nonce, "verifier": verifier, "at": int(time.time())}
    return kept, discovery()["authorization_endpoint"] + "?" + urlencode(params)


def complete(kept: dict | None, query: dict) -> dict:
    """The ID token's claims (checked) for the callback's query, or Refused."""
    if not kept:
        raise Refused("no authorization request in this session")
    if not secrets.compare_digest(str(query.get("state", "")), kept["state"]):
        raise Refused("wrong state")
    if query.get("error"):
        raise Refused(f"provider error {query.get('error')!r}")
    code = query.get("code")
    if not code:
        raise Refused("no code")
    document = discovery()
    try:
        tokens = fetch_json(
            document["token_endpoint"],
            form={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri(),
                "client_id": settings.PORTAIL_FRANCECONNECT_CLIENT_ID,
                "client_secret": settings.PORTAIL_FRANCECONNECT_CLIENT_SECRET,
                "code_verifier": kept["verifier"],
            },
        )
    except FetchError as exc:
        raise Refused(f"token endpoint: {exc}") from None
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise Refused("no ID token")
    claims = verify_id_token(id_token, kept["nonce"], issuer=document["issuer"])
    return {"claims": claims, "id_token": id_token}


def verify_id_token(id_token: str, nonce: str, *, issuer: str) -> dict:
    expected = {
        "iss": issuer,
        "aud": settings.PORTAIL_FRANCECONNECT_CLIENT_ID,
        "exp": None,
        "iat": None,
        "sub": None,
        "nonce": nonce,
    }
    claims = None
    for refresh in (False, True):  # a key not yet seen: the provider may have rotated
        try:
            token = jwt.JWT(
                jwt=id_token, key=_jwks(refresh), algs=ALGORITHMS, check_claims=expected
            )
            claims = json.loads(token.claims)
            break
        except jwt.JWTMissingKey:
            continue
        except (JWException, ValueError, TypeError) as exc:
            raise Refused(f"ID token: {type(exc).__name__}: {exc}") from None
        except FetchError as exc:
            raise Refused(f"JWKS: {exc}") from None
    if claims is None:
        raise Refused("ID token signed by a key the provider does not publish")
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != expected["aud"]:
        raise Refused("several audiences without our azp")  # OIDC Core §3.1.3.7, 4 and 5
    if settings.PORTAIL_FRANCECONNECT_ACR and claims.get("acr") not in set(
        settings.PORTAIL_FRANCECONNECT_ACR.split()
    ):
        raise Refused(f"acr {claims.get('acr')!r} is not the one asked")
    return claims


def logout_url(id_token: str) -> str | None:
    """FranceConnect's end_session_endpoint for this session, or None when it has none."""
    try:
        endpoint = discovery().get("end_session_endpoint")
    except FetchError:
        return None
    if not endpoint:
        return None
    params = {
        "id_token_hint": id_token,
        "post_logout_redirect_uri": post_logout_redirect_uri(),
        "state": secrets.token_urlsafe(16),
    }
    return endpoint + "?" + urlencode(params)
