"""OpenID Connect with django-oauth-toolkit: the ENT claims, and the flows we refuse."""

import contextvars
import hashlib
import json
import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from jwcrypto import jwk, jws
from oauth2_provider.models import (
    AbstractApplication,
    Grant,
    RefreshToken,
    get_application_model,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import SettingsScopes
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from . import bearer, privacy
from .models import DEFAULT_RELEASE, Application, AuthorizationTime, SpentCode
from .rows import OneRow
from .secrets import ClientSecretHasher
from .services import user_attributes

log = logging.getLogger(__name__)

# The ENT claims (the same names as the CAS attributes) come with the "ent" scope, the email with
# "email"; the standard profile claims with "profile".
ENT_CLAIM_SCOPE = {
    "identifier": "ent",
    "firstName": "ent",
    "lastName": "ent",
    "displayName": "ent",
    "entProfile": "ent",
    "uai": "ent",
    "classes": "ent",
    "email": "email",
    "email_verified": "email",
    "given_name": "profile",
    "family_name": "profile",
    "name": "profile",
    "preferred_username": "profile",
}


# The standard claims (scope « profile ») that carry a released ENT attribute's value.
STANDARD_NAME_CLAIMS = {"firstName": "given_name", "lastName": "family_name", "displayName": "name"}


# Set by the authorization view around the toolkit's code issuance: the portal session's login
# time (services.AUTH_TIME_KEY), which the validator stores with the code.
session_auth_time = contextvars.ContextVar("portail_session_auth_time", default=None)
# Set by the authorization view: whether this request has a portal session recent enough for
# prompt=none (OIDC Core §3.1.2.1: logged in, and within max_age when one is given).
silent_login_possible = contextvars.ContextVar("portail_silent_login_possible", default=False)
# Set by the authorization view: the portal session's user (None when anonymous), for the
# id_token_hint check.
session_user = contextvars.ContextVar("portail_session_user", default=None)
# Set by the authorization view: the portal session's sid and amr (portail.sso.privacy).
session_sid = contextvars.ContextVar("portail_session_sid", default="")
session_amr = contextvars.ContextVar("portail_session_amr", default=None)


def id_token_hint_claims(hint: str) -> dict | None:
    """The claims of an ID token this portal signed (expired or not), else None.

    OIDC Core §3.1.2.1: an id_token_hint may have expired; its signature and issuer are what
    make it ours.
    """
    try:
        signed = jws.JWS()
        signed.deserialize(hint)
        for pem in (
            oauth2_settings.OIDC_RSA_PRIVATE_KEY,
            *oauth2_settings.OIDC_RSA_PRIVATE_KEYS_INACTIVE,
        ):
            try:
                signed.verify(jwk.JWK.from_pem(pem.encode()), alg="RS256")
                break
            except jws.InvalidJWSSignature:
                continue
        else:
            return None
        claims = json.loads(signed.payload)
    except (jws.InvalidJWSObject, ValueError, TypeError):
        return None
    if not isinstance(claims, dict) or claims.get("iss") != oauth2_settings.OIDC_ISS_ENDPOINT:
        return None
    return claims


def hint_matches_user(claims: dict, user) -> bool:
    """Whether a verified hint's pairwise sub is this user's at the client it was issued to."""
    audience = claims.get("aud")
    client_id = audience[0] if isinstance(audience, list) and len(audience) == 1 else audience
    if not isinstance(client_id, str) or user is None:
        return False
    client = get_application_model().objects.filter(client_id=client_id).first()
    if client is None:
        return False
    expected = privacy.subject_for_client(user.pk, client)
    return constant_time_compare(str(claims.get("sub", "")), expected)


def _family_ended(family, auth_time) -> bool:
    """Whether a refresh-token family is past its absolute end.

    The toolkit's REFRESH_TOKEN_EXPIRE_SECONDS counts from the last rotation, so a client that
    refreshes daily would never have to send the user back. NIST 800-63B §4.1.3 (and settings.py):
    reauthenticate every PORTAIL_REMEMBER_ME_DAYS days; the family ends that long after the login
    that authorized it (auth_time), or, for a family without one, after its first token.
    """
    started = auth_time
    if started is None:
        first = RefreshToken.objects.filter(token_family=family).aggregate(first=Min("created"))
        started = first["first"].timestamp() if first["first"] else None
    if started is None:
        return True
    return time.time() >= started + settings.PORTAIL_REMEMBER_ME_DAYS * 24 * 3600


def _portail_application(client):
    # A client without a Portail application: the reverse one-to-one raises AttributeError.
    return getattr(client, "portail_application", None) if client is not None else None


def email_verified(user) -> bool:
    """The current address was proven: a link mailed to it was used since it was last set.

    Typing an address at the first connection proves nothing (a pupil could type someone else's,
    and an application that merges accounts on a verified email would hand that account over):
    only a password reset completed through the mailed link, or an activation through the link
    mailed to the import's contact address with that address kept, count. A change in « Mon
    compte » makes it unproven until the next such link.
    """
    from django.db.models import Q

    from portail.accounts.models import State
    from portail.audit.models import Event

    if not user.email or user.state != State.ACTIVE or user.activated_at is None:
        return False
    last_change = (
        Event.objects.filter(target_id=user.pk, tag="account.email.changed")
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    since = max(user.activated_at, last_change) if last_change else user.activated_at
    return (
        Event.objects.filter(target_id=user.pk, at__gte=since)
        .filter(
            Q(tag="account.password.reset") | Q(tag="account.activated", data__email_proven=True)
        )
        .exists()
    )


def _remember_authentication(request, row):
    """auth_time, sid and amr of the code or refresh-token family, for its ID token."""
    when, sid, amr = row if row is not None else (None, "", None)
    request.portail_auth_time = when
    request.portail_sid = sid or ""
    request.portail_amr = amr or None


def _code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


# The code with its user, a client with its Portail application: one statement each, its SQL
# written once (rows.py) rather than compiled by the ORM at each token request.
_GRANT = OneRow(Grant, "code", ("user",))
_CLIENT = OneRow(get_application_model, "client_id", ("portail_application",))
_AUTHORIZATION_TIME = OneRow(AuthorizationTime, "grant")


# Per thread (one request at a time runs in a thread): the ID token row this request just stored.
_this_request = threading.local()


def remember_signed_id_token(signed: str, row) -> None:
    _this_request.signed_id_token = (signed, row)


def revoke_tokens_of_replayed_code(code, client):
    """RFC 6749 §4.1.2: a code used twice revokes what its first exchange issued."""
    if not code or client is None:
        return
    spent = SpentCode.objects.filter(
        digest=_code_digest(code), client=client, expires_at__gt=timezone.now()
    ).first()
    if spent is None or spent.token_family is None:
        return
    for token in RefreshToken.objects.filter(token_family=spent.token_family, revoked=None):
        token.revoke()  # and its access token
    log.warning("authorization code replayed: tokens of client %s revoked", client.client_id)


class PortailOAuth2Validator(OAuth2Validator):
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, **ENT_CLAIM_SCOPE}

    def _create_authorization_code(self, request, code, expires=None):
        grant = super()._create_authorization_code(request, code, expires)
        when = session_auth_time.get()
        if when is not None:
            AuthorizationTime.objects.create(
                grant=grant,
                auth_time=when,
                sid=session_sid.get(),
                amr=session_amr.get() or ["pwd"],
            )
        return grant

    # --- one read of the code per token request -------------------------------------------------
    # The toolkit reads the code's row five times per exchange (its scopes for the dispatcher, the
    # row and its user to validate it, its nonce, then again for PKCE): one query here, with the
    # user, kept on the request (bench/sso.py: 29 statements per exchange before).

    @staticmethod
    def _grant_row(code, request):
        row = getattr(request, "portail_grant_row", None)
        if row is None or row.code != code:
            row = _GRANT.get(code)
            request.portail_grant_row = row
        return row

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        row = self._grant_row(code, request)
        return row.scope.split() if row is not None and row.scope else []

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        row = self._grant_row(code, request)
        return (row.nonce or None) if row is not None else None

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        # The toolkit's checks (its validate_code), on the row read once: the code belongs to
        # this client and has not expired.
        grant = self._grant_row(code, request)
        valid = grant is not None and client is not None and grant.application_id == client.pk
        valid = valid and not grant.is_expired()
        if valid:
            request.scopes = grant.scope.split(" ")
            request.user = grant.user
            if grant.nonce:
                request.nonce = grant.nonce
            if grant.claims:
                request.claims = json.loads(grant.claims)
            # Kept for the checks that follow (PKCE, redirect_uri): a concurrent exchange may
            # delete the code meanwhile, and the toolkit would then fail with a 500.
            request.portail_grant = grant
        if not valid:
            revoke_tokens_of_replayed_code(code, client)
            return False
        # The code's login time, sid and amr (one row per code: a one-to-one).
        when = _AUTHORIZATION_TIME.get(grant.pk)
        _remember_authentication(request, (when.auth_time, when.sid, when.amr) if when else None)
        return True

    def _check_and_set_request_resource(self, request):
        """RFC 8707 at the token endpoint, without the toolkit's second read of the code.

        For a code exchange the toolkit reads the code again (filtered by code and client) to
        narrow the resources to the granted ones; the row validate_code read is that row. Its
        normalisation and URI checks run as they are (with the grant branch skipped), then its
        narrowing on that row, word for word.
        """
        row = getattr(request, "portail_grant_row", None)
        if request.grant_type != "authorization_code" or row is None or row.code != request.code:
            return super()._check_and_set_request_resource(request)
        client = request.client
        grant = row if client is not None and row.application_id == client.pk else None
        request.grant_type = "portail:code-already-read"
        try:
            super()._check_and_set_request_resource(request)
        finally:
            request.grant_type = "authorization_code"
        grant_resource = (grant.resource or []) if grant else []
        if request.resource and grant_resource:
            # Token request is narrowing the resource scope
            for res in request.resource:
                if res not in grant_resource:
                    raise errors.CustomOAuth2Error(
                        error="invalid_target",
                        description=(
                            f"The requested resource '{res}' is not allowed. "
                            "Token request cannot escalate resource permissions beyond the "
                            "original authorization grant"
                        ),
                        request=request,
                    )
        elif grant_resource:
            self._validate_resource_uris(request, grant_resource)
            request.resource = grant_resource
        return None

    def _validated_grant(self, code, request):
        grant = getattr(request, "portail_grant", None)
        if grant is None or grant.code != code:
            raise errors.InvalidGrantError(request=request)
        return grant

    def get_code_challenge(self, code, request):
        return self._validated_grant(code, request).code_challenge or None

    def get_code_challenge_method(self, code, request):
        return self._validated_grant(code, request).code_challenge_method or None

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, *args, **kwargs):
        request = kwargs.get("request") or (args[0] if args else None)
        grant = self._validated_grant(code, request)
        if not grant.redirect_uri_allowed(redirect_uri):
            # RFC 6749 §5.2: a redirect_uri unlike the authorization request's is invalid_grant
            # (oauthlib would answer invalid_request).
            raise errors.InvalidGrantError(
                description="redirect_uri does not match the authorization request."
            )
        return True

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous):
        token = super()._create_refresh_token(request, refresh_token_code, access_token, previous)
        if previous is None and request.grant_type == "authorization_code" and request.code:
            # Remembered so that a replay of this code revokes this family (RFC 6749 §4.1.2).
            SpentCode.objects.create(
                digest=_code_digest(request.code),
                client=request.client,
                token_family=token.token_family,
                expires_at=timezone.now()
                + timedelta(seconds=oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS),
            )
        when = getattr(request, "portail_auth_time", None)
        if previous is None and when is not None:
            AuthorizationTime.objects.create(
                token_family=token.token_family,
                auth_time=when,
                sid=getattr(request, "portail_sid", ""),
                amr=getattr(request, "portail_amr", None) or ["pwd"],
            )
        return token

    def _save_bearer_token(self, token, request, *args, **kwargs):
        previous = getattr(request, "refresh_token_instance", None)
        if request.grant_type == "refresh_token" and isinstance(previous, RefreshToken):
            # Two refreshes with the same token both pass validation before either rotates it.
            # Under this row lock (held until the new tokens commit), only the first finds it
            # unrevoked; the second is invalid_grant, as RFC 6749 §5.2 says of a used grant,
            # instead of the toolkit's grace-period answer (a 500 with hashed token storage).
            # A later replay of the same token revokes the family (reuse protection).
            alive = (
                RefreshToken.objects.select_for_update()
                .filter(pk=previous.pk, revoked__isnull=True)
                .values_list("pk", flat=True)
                .first()
            )
            if alive is None:
                raise errors.InvalidGrantError(
                    description="Refresh token already used.", request=request
                )
            try:
                with transaction.atomic():
                    return super()._save_bearer_token(token, request, *args, **kwargs)
            except IntegrityError as exc:
                # Without row locks (SQLite), the loser of the race trips on the one-to-one
                # between the old refresh token and its successor: the same invalid_grant.
                raise errors.InvalidGrantError(
                    description="Refresh token already used.", request=request
                ) from exc
        if request.grant_type == "authorization_code" and request.code:
            return self._save_code_exchange(token, request, *args, **kwargs)
        return super()._save_bearer_token(token, request, *args, **kwargs)

    def _save_code_exchange(self, token, request, *args, **kwargs):
        """The code is consumed in the transaction that stores its tokens, under a row lock.

        The toolkit deletes the code after this transaction: two concurrent exchanges would both
        store tokens. Here the second waits for the first, finds no code, and is a replay
        (invalid_grant, and save_bearer_token revokes what the first exchange issued).
        """
        grant = (
            Grant.objects.select_for_update()
            .filter(code=request.code, application=request.client)
            .values_list("pk", flat=True)
            .first()
        )
        if grant is None:
            request.portail_code_replayed = True
            raise errors.InvalidGrantError(description="Code already used.", request=request)
        try:
            with transaction.atomic():
                saved = super()._save_bearer_token(token, request, *args, **kwargs)
        except IntegrityError as exc:  # SQLite, without row locks: the SpentCode is taken
            request.portail_code_replayed = True
            raise errors.InvalidGrantError(
                description="Code already used.", request=request
            ) from exc
        # The code and its authorization time: two DELETEs (Django's cascade would first SELECT
        # the grant to collect its dependants, and only AuthorizationTime depends on it).
        AuthorizationTime.objects.filter(grant_id=grant).delete()
        codes = Grant.objects.filter(pk=grant)
        codes._raw_delete(codes.db)
        request.portail_code_consumed = True
        return saved

    def save_bearer_token(self, token, request, *args, **kwargs):
        try:
            return super().save_bearer_token(token, request, *args, **kwargs)
        except errors.InvalidGrantError:
            if getattr(request, "portail_code_replayed", False):
                # After the rollback: the revocation must stay.
                revoke_tokens_of_replayed_code(request.code, request.client)
            raise

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        if getattr(request, "portail_code_consumed", False):
            return  # deleted with its tokens' transaction (_save_code_exchange)
        super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        family = getattr(getattr(request, "refresh_token_instance", None), "token_family", None)
        if valid and family is not None:
            _remember_authentication(
                request,
                AuthorizationTime.objects.filter(token_family=family)
                .values_list("auth_time", "sid", "amr")
                .first(),
            )
            if _family_ended(family, request.portail_auth_time):
                return False  # invalid_grant: the user must log in again
        return valid

    # The ID token just signed is stored, then the toolkit reads it back for the access token by
    # verifying the JWT and loading its application and row again: the row it stored is used.
    # The toolkit keeps one validator per view class for every request and thread: what is kept
    # between these calls lives in the thread running the request, never on the validator.
    def _save_id_token(self, jti, request, expires, *args, **kwargs):
        row = super()._save_id_token(jti, request, expires, *args, **kwargs)
        _this_request.id_token_row = row
        return row

    def finalize_id_token(self, id_token, token, token_handler, request):
        _this_request.id_token_row = None
        signed = super().finalize_id_token(id_token, token, token_handler, request)
        remember_signed_id_token(signed, _this_request.id_token_row)
        return signed

    def _load_id_token(self, token):
        signed, row = getattr(_this_request, "signed_id_token", (None, None))
        _this_request.signed_id_token = (None, None)  # used once
        if row is not None and signed and constant_time_compare(signed, token):
            return row
        return super()._load_id_token(token)

    def _load_access_token(self, token):
        # The toolkit's query, with the client's Portail application (its release list, for
        # userinfo), in one statement written once rather than compiled by the ORM at each
        # bearer request (bearer.py).
        return bearer.load_access_token(token)

    def _load_application(self, client_id, request):
        client = request.client
        if client is None or getattr(client, "client_id", None) != client_id:
            # The Portail application (release list, PKCE choice) comes with the client's row.
            request.client = _CLIENT.get(client_id)
            if request.client is None:
                return super()._load_application(client_id, request)
        return super()._load_application(client_id, request)

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expiration = super().get_id_token_dictionary(token, token_handler, request)
        when = getattr(request, "portail_auth_time", None)
        if when is not None:
            claims["auth_time"] = int(when)
        sid = getattr(request, "portail_sid", "")
        if sid:
            claims["sid"] = sid  # Back-Channel Logout §2.4: the portal session
        amr = getattr(request, "portail_amr", None) or ["pwd"]
        claims["amr"] = amr  # RFC 8176
        claims["acr"] = privacy.acr_of(amr)
        return claims, expiration

    def _released(self, request):
        app = getattr(request.client, "portail_application", None) if request.client else None
        return app.released_attributes if app is not None else DEFAULT_RELEASE

    def get_claim_dict(self, request):
        claims = super().get_claim_dict(request)
        # OIDC Core §8.1: pairwise, never the database key (privacy.py).
        claims["sub"] = privacy.subject_for_client(request.user.pk, request.client)
        return claims

    def get_additional_claims(self, request):
        user = request.user
        claims = user_attributes(user, self._released(request))
        # Standard OIDC claims for relying parties that only know those (OIDC Core §5.1), under
        # the administrators' release list as the ENT claims and the CAS attributes are: the
        # first name only where « firstName » is released, and so on.
        for released, standard in STANDARD_NAME_CLAIMS.items():
            if released in claims:
                claims[standard] = claims[released]
        if "identifier" in claims:
            # The ENT identifier only where the administrator releases it: with pairwise sub,
            # it is what would let two applications correlate a pupil.
            claims["preferred_username"] = user.identifier
        if "email" in claims:
            claims["email_verified"] = email_verified(user)
        return claims

    def get_discovery_claims(self, request):
        return ["sub", "sid", "acr", "amr", "auth_time", *ENT_CLAIM_SCOPE]

    @classmethod
    def _get_additional_claims_is_request_agnostic(cls):
        # get_additional_claims above takes the request. The toolkit asks inspect.signature
        # twice per userinfo and ID token (~0.03 ms) for what this class says once.
        return False

    def client_authentication_required(self, request, *args, **kwargs):
        if getattr(request, "client_assertion", None):
            return True  # private_key_jwt (RFC 7523 §2.2)
        return super().client_authentication_required(request, *args, **kwargs)

    def authenticate_client(self, request, *args, **kwargs):
        from . import client_assertions

        if getattr(request, "client_assertion", None):
            # The assertion is the only credential then: no secret alongside.
            return client_assertions.authenticate(request)
        return super().authenticate_client(request, *args, **kwargs)

    def _check_secret(self, provided_secret, stored_secret):
        """The keyed digest (secrets.py) in microseconds; an older Argon2 hash once, then replaced.

        Called only with a client loaded on the request (its row's current secret).
        """
        provided_secret = provided_secret or ""
        try:
            hasher = identify_hasher(stored_secret)
        except ValueError:  # stored in clear (hash_client_secret=False)
            return constant_time_compare(provided_secret, stored_secret)
        if hasher.algorithm == ClientSecretHasher.algorithm:
            return hasher.verify(provided_secret, stored_secret)
        if not check_password(provided_secret, stored_secret):
            return False
        # A secret hashed before Portail's digest (Argon2): verified this once, stored as the
        # digest from now on, so the next requests skip Argon2 (no rotation needed).
        get_application_model().objects.filter(client_secret=stored_secret).update(
            client_secret=make_password(provided_secret, hasher=ClientSecretHasher.algorithm)
        )
        return True

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        # RFC 9700: no password grant; code and refresh for users, client credentials (RFC 6749
        # §4.4) for a confidential client an administrator gave API scopes.
        if grant_type == "client_credentials":
            app = _portail_application(client)
            return bool(
                client.client_type == AbstractApplication.CLIENT_CONFIDENTIAL
                and app is not None
                and app.client_credentials_scopes()
            )
        if grant_type not in ("authorization_code", "refresh_token"):
            return False
        return super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs)

    def is_pkce_required(self, client_id, request):
        """Public clients always (RFC 9700 §2.1.1); confidential ones unless exempted."""
        client = request.client or self._load_application(client_id, request)
        if client is None or client.client_type != AbstractApplication.CLIENT_CONFIDENTIAL:
            return True
        app = _portail_application(client)
        return app is None or app.oidc_require_pkce

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        from .clients import redirect_uri_problem

        if redirect_uri_problem(redirect_uri, request.client) is not None:
            return False
        return super().validate_redirect_uri(client_id, redirect_uri, request, *args, **kwargs)

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        # No implicit, no hybrid: the authorization code flow only.
        if response_type != "code":
            return False
        return client.allows_grant_type(AbstractApplication.GRANT_AUTHORIZATION_CODE)

    def validate_silent_login(self, request):
        # prompt=none (OIDC Core §3.1.2.6): False is answered with login_required.
        return silent_login_possible.get()

    def validate_user_match(self, id_token_hint, scopes, claims, request):
        # OIDC Core §3.1.2.1: the hinted user must be the session's; otherwise login_required.
        if not id_token_hint:
            return True
        claims = id_token_hint_claims(id_token_hint)
        return claims is not None and hint_matches_user(claims, session_user.get())

    def validate_silent_authorization(self, request):
        # prompt=none: the consent screen cannot be shown; False is consent_required.
        client = getattr(request, "client", None)
        return bool(client is not None and client.skip_authorization)

    def validate_user(self, *args, **kwargs):
        return False  # the password grant is never accepted


class PortailScopes(SettingsScopes):
    """Each client may ask only the scopes its release list justifies (set by administrators).

    openid and profile always; "ent" when an ENT claim other than the email is released;
    "email" when the email is released. A client without a Portail application gets openid only.
    """

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        everything = super().get_available_scopes(application, request, *args, **kwargs)
        if application is None:
            return everything
        app = Application.objects.filter(oidc_client=application).first()
        if app is None:
            return ["openid"]
        if getattr(request, "grant_type", None) == "client_credentials":
            # Server to server: only the scopes the administrator gave this client.
            return [scope for scope in everything if scope in app.client_credentials_scopes()]
        released = set(app.released_attributes or [])
        # offline_access (OIDC Core §11): accepted, refresh tokens are issued anyway.
        allowed = {"openid", "profile", "offline_access"}
        if released - {"email"}:
            allowed.add("ent")
        if "email" in released:
            allowed.add("email")
        return [scope for scope in everything if scope in allowed]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        if getattr(request, "grant_type", None) == "client_credentials":
            app = Application.objects.filter(oidc_client=application).first()
            return app.client_credentials_scopes() if app is not None else []
        return super().get_default_scopes(application, request, *args, **kwargs)
