"""The token endpoint's lean path: a valid code exchange or refresh, without oauthlib's pipeline.

Issue 9 §6 asks 300 token requests per second per core (≤ 3.3 ms of server CPU each); through
django-oauth-toolkit's TokenView and oauthlib's pipeline a code exchange cost ~8 ms and a refresh
~10 ms (16 and 17 statements, each compiled by the ORM, and the pipeline's own work around them).
For the two grants that matter, ``answer`` handles a request that is *valid* in three statements
on PostgreSQL, their SQL written once per connection:

- one reads the code (or the unrevoked refresh token, by its checksum) with its user, its client,
  the client's Portail application and the login time (AuthorizationTime); the client is
  authenticated against that row: ``none`` (a public client, its client_id in the body),
  ``client_secret_basic`` or ``client_secret_post`` (the keyed digest, secrets.py);
- the toolkit's checks (the code's client, expiry, redirect_uri, PKCE S256; the refresh token's
  sliding expiry and the family's absolute end), then the ID token's claims (the released ``uai``
  is the second statement) and its RS256 signature;
- one statement consumes the code (``DELETE … RETURNING id``) or revokes the refresh token
  (``UPDATE … WHERE revoked IS NULL RETURNING id``, and deletes its access token, as the toolkit's
  ``RefreshToken.revoke()`` does) and inserts the ID token, access token, refresh token (and the
  spent code and the family's login time): every INSERT selects from that gate, so of two
  concurrent requests the second (which waits for the first's commit) stores nothing. Elsewhere
  (SQLite) the same rows, one statement each, in one transaction.

The toolkit's models stay the storage (admin, revocation, introspection, logout read the same
rows), the ID token's claims come from the same validator methods (PortailOAuth2Validator), and
it is signed with the same key (RS256). Anything else — another grant or authentication method
(private_key_jwt), an Origin header (CORS), a duplicated or unexpected parameter, a resource or
scope parameter, and every request that fails a check — returns None: the toolkit's path then
handles the request from the start and answers exactly as before (RFC 6749 §5.2 errors, a
replayed code revoking what it issued, reuse detection on a revoked refresh token, the failure
counters of the rate limits). The one answer given here that is not a success: two concurrent
refreshes of one token, the second gets invalid_grant « Refresh token already used. », as
PortailOAuth2Validator answers it.
"""

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from contextlib import nullcontext, suppress
from datetime import timedelta
from urllib.parse import unquote_plus

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.contrib.auth.hashers import identify_hasher
from django.db import IntegrityError, connections, router, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from jwcrypto.common import JWException
from oauth2_provider.models import (
    AbstractApplication,
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.signals import app_authorized
from oauth2_provider.utils import jwk_from_pem
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.oauth2.rfc6749 import errors

from . import oidc
from .models import AuthorizationTime, SpentCode
from .rows import OneRow
from .secrets import ClientSecretHasher

# oauthlib's answers carry these headers (TokenEndpoint's default headers).
_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache"}
# RFC 7636 §4.1: code_verifier = 43*128unreserved.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CODE_FIELDS = {"grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret"}
_REFRESH_FIELDS = {"grant_type", "refresh_token", "client_id", "client_secret"}


class _Attached:
    """Where OneRow caches the login time joined to the row: ``row.portail_authentication``
    (the AuthorizationTime, or None)."""

    concrete = True

    def set_cached_value(self, owner, instance):
        owner.portail_authentication = instance


class _WithAuthentication(OneRow):
    """OneRow, plus the row's login time (AuthorizationTime, joined on ``on``: the code's
    ``grant_id`` or the family's ``token_family``) in the same statement; ``unrevoked``: a
    refresh token only while unrevoked (a revoked one goes to the toolkit, which tells a retry
    within the grace period from a replay and revokes the family)."""

    def __init__(self, model, by, related, *, on, unrevoked=False):
        super().__init__(model, by, related)
        self._on, self._unrevoked = on, unrevoked

    def _compile(self, alias):
        sql, layout = super()._compile(alias)
        connection = connections[alias]
        quote = connection.ops.quote_name
        model = AuthorizationTime
        fields = list(model._meta.concrete_fields)
        table = f"t{len(layout)}"
        converters = []
        for field in fields:
            col = field.get_col(table)
            converters.append(
                (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
            )
        columns = ", ".join(f"{quote(table)}.{quote(field.column)}" for field in fields)
        # The joined row's columns come last, as OneRow reads them (its layout, in order).
        select, _, rest = sql.partition(" FROM ")
        head, _, where = rest.partition(" WHERE ")
        on = self._on
        target = "id" if on == "grant_id" else on
        join = (
            f" LEFT OUTER JOIN {quote(model._meta.db_table)} {quote(table)}"
            f" ON {quote(table)}.{quote(on)} = {quote('t0')}.{quote(target)}"
        )
        sql = f"{select}, {columns} FROM {head}{join} WHERE {where}"
        if self._unrevoked:
            sql += f" AND {quote('t0')}.{quote('revoked')} IS NULL"
        attnames = [field.attname for field in fields]
        layout = [
            *layout,
            (model, attnames, converters, fields.index(model._meta.pk), 0, _Attached()),
        ]
        return sql, layout


# The code or refresh token with its user and its client (and the client's Portail application:
# release list, pairwise sector) and its login time, one statement: the client is authenticated
# against that row.
_WITH_CLIENT = ("user", "application", "application__portail_application")
_GRANT = _WithAuthentication(get_grant_model, "code", _WITH_CLIENT, on="grant_id")
_REFRESH = _WithAuthentication(
    get_refresh_token_model,
    "token_checksum",
    (*_WITH_CLIENT, "access_token"),
    on="token_family",
    unrevoked=True,
)


class _Insert:
    """One INSERT … RETURNING id, its SQL written once per connection and column set."""

    def __init__(self, model):
        self._model = model
        self._sql = {}

    @property
    def model(self):
        return self._model if isinstance(self._model, type) else self._model()

    def __call__(self, values: dict):
        model = self.model
        alias = router.db_for_write(model)
        connection = connections[alias]
        key = (alias, tuple(values))
        compiled = self._sql.get(key)
        if compiled is None:
            quote = connection.ops.quote_name
            fields = [model._meta.get_field(name) for name in values]
            columns = ", ".join(quote(field.column) for field in fields)
            marks = ", ".join(["%s"] * len(fields))
            pk = quote(model._meta.pk.column)
            sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608
            compiled = self._sql[key] = (f"{sql} RETURNING {pk}", fields)
        sql, fields = compiled
        params = [
            field.get_db_prep_save(value, connection)
            for field, value in zip(fields, values.values(), strict=True)
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]


_ID_TOKEN = _Insert(get_id_token_model)
_ACCESS_TOKEN = _Insert(get_access_token_model)
_REFRESH_TOKEN = _Insert(get_refresh_token_model)
_SPENT_CODE = _Insert(SpentCode)
_AUTHORIZATION_TIME = _Insert(AuthorizationTime)


class _Statement:
    """A fixed statement on one model's table, its SQL written once per connection.

    ``template`` names the table {table} and columns {column_name} (quoted for the connection).
    """

    def __init__(self, model, template):
        self._model = model
        self._template = template
        self._sql = {}

    @property
    def model(self):
        return self._model if isinstance(self._model, type) else self._model()

    def __call__(self, params):
        """(rowcount, the first row or None)."""
        model = self.model
        alias = router.db_for_write(model)
        connection = connections[alias]
        sql = self._sql.get(alias)
        if sql is None:
            quote = connection.ops.quote_name
            names = {f.name: quote(f.column) for f in model._meta.concrete_fields}
            names |= {f.attname: quote(f.column) for f in model._meta.concrete_fields}
            sql = self._sql[alias] = self._template.format(
                table=quote(model._meta.db_table), **names
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone() if cursor.description else None
            return cursor.rowcount, row

    def db_value(self, field_name, value):
        model = self.model
        connection = connections[router.db_for_write(model)]
        return model._meta.get_field(field_name).get_db_prep_save(value, connection)


# The code's login time (one row per code), deleted with the code.
_DELETE_CODE_AUTHENTICATION = _Statement(
    AuthorizationTime, "DELETE FROM {table} WHERE {grant_id} = %s"
)
_DELETE_CODE = _Statement(
    get_grant_model, "DELETE FROM {table} WHERE {id} = %s AND {application_id} = %s"
)
# RefreshToken.revoke() in two statements: only one of two concurrent refreshes changes the row.
_REVOKE_REFRESH_TOKEN = _Statement(
    get_refresh_token_model,
    "UPDATE {table} SET {revoked} = %s, {access_token_id} = NULL, {updated} = %s"
    " WHERE {id} = %s AND {revoked} IS NULL",
)
_DELETE_ACCESS_TOKEN = _Statement(get_access_token_model, "DELETE FROM {table} WHERE {id} = %s")


def _authentication(row):
    """(auth_time, sid, amr) of the login time joined to the code or family, or None."""
    if row is None:
        return None
    return row.auth_time, row.sid, row.amr


class _AlreadyUsed(Exception):
    """The code or refresh token was consumed by a concurrent request (rolls back)."""


# --- the request -------------------------------------------------------------------------------


def _single_valued(request, allowed):
    """The form's fields, or None when one is repeated, unexpected or in the query string."""
    if request.GET or request.FILES:
        return None
    if request.headers.get("Origin"):
        return None  # CORS headers: the toolkit's path
    fields = {}
    for name, values in request.POST.lists():
        if name not in allowed or len(values) != 1:
            return None
        fields[name] = values[0]
    return fields


def _basic_credentials(request):
    """(client_id, secret) of an Authorization: Basic header (RFC 6749 §2.3.1), () without one,
    None when it cannot be read (the toolkit answers that)."""
    header = request.headers.get("Authorization")
    if header is None:
        return ()
    kind, _, encoded = header.partition(" ")
    if kind != "Basic":
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode(settings.DEFAULT_CHARSET)
        client_id, secret = map(unquote_plus, decoded.split(":", 1))
    except (ValueError, UnicodeDecodeError):
        return None
    return client_id, secret


def _secret_matches(provided: str, stored: str):
    """True or False with the keyed digest or a secret stored in clear; None for an older hash
    (the validator verifies it once and replaces it: the toolkit's path)."""
    try:
        hasher = identify_hasher(stored)
    except ValueError:
        return constant_time_compare(provided, stored)
    if hasher.algorithm != ClientSecretHasher.algorithm:
        return None
    return hasher.verify(provided, stored)


def _credentials(request, fields):
    """(client_id, secret or None) as the request carries them, or None (the toolkit answers)."""
    credentials = _basic_credentials(request)
    if credentials is None:
        return None
    body_id, body_secret = fields.get("client_id"), fields.get("client_secret")
    if credentials:
        client_id, secret = credentials
        if body_secret is not None or (body_id is not None and body_id != client_id):
            return None
    else:
        client_id, secret = body_id, body_secret
    return (client_id, secret) if client_id else None


def _authenticated(client, credentials) -> bool:
    """Whether the client read with the code or refresh token is the one these credentials
    authenticate: a public client without a secret, a confidential one with its secret."""
    client_id, secret = credentials
    if client is None or not constant_time_compare(client.client_id, client_id):
        return False
    if client.algorithm != AbstractApplication.RS256_ALGORITHM:
        return False
    if client.authorization_grant_type != AbstractApplication.GRANT_AUTHORIZATION_CODE:
        return False
    if client.client_type == AbstractApplication.CLIENT_PUBLIC:
        return secret is None
    if secret is None or client.client_type != AbstractApplication.CLIENT_CONFIDENTIAL:
        return False
    return bool(_secret_matches(secret, client.client_secret))


# --- the answer --------------------------------------------------------------------------------


_signing_keys = {}


def _signing_key():
    """The RS256 private key and its kid, as the toolkit's ``Application.jwk_key`` reads it
    (``jwk_from_pem``), the kid computed once per key (the key is configuration, not a decision:
    a new OIDC_RSA_PRIVATE_KEY is a new entry)."""
    pem = oauth2_settings.OIDC_RSA_PRIVATE_KEY
    entry = _signing_keys.get(pem)
    if entry is None:
        key = jwk_from_pem(pem)
        entry = _signing_keys[pem] = (key.get_op_key("sign"), key.thumbprint())
    return entry


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign_rs256(claims: dict) -> str:
    """The compact JWS (RFC 7515 §7.1) of the claims, RS256 (RFC 7518 §3.3: RSASSA-PKCS1-v1_5
    with SHA-256), with the header the toolkit writes (typ, alg, kid). jwcrypto's JWT object
    deep-copies its header registries at each token (~0.3 ms); the signature itself is
    cryptography's, the same call jwcrypto makes. Tests verify these tokens with jwcrypto, PyJWT
    and the relying-party libraries."""
    key, kid = _signing_key()
    header = {"typ": "JWT", "alg": AbstractApplication.RS256_ALGORITHM, "kid": kid}
    signing_input = (
        _b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64(json.dumps(claims, default=str, separators=(",", ":")).encode())
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _half_hash(value: str) -> str:
    # OIDC Core §3.1.3.6 at_hash: the left half of SHA-256, base64url (oauthlib's id_token_hash).
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _id_token(client, user, scopes, nonce, access_token, authentication):
    """The signed ID token and its row's values, with the claims PortailOAuth2Validator gives."""
    validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
    request = OAuthlibRequest("")
    request.client, request.client_id, request.user = client, client.client_id, user
    request.scopes, request.nonce, request.claims = scopes, nonce, None
    oidc._remember_authentication(request, authentication)
    # oauthlib's add_id_token, then the toolkit's finalize_id_token.
    id_token = {"aud": client.client_id, "iat": int(time.time())}
    if nonce:
        id_token["nonce"] = nonce
    id_token["at_hash"] = _half_hash(access_token)
    claims, expires = validator.get_id_token_dictionary({}, None, request)
    id_token.update(**claims)
    return _sign_rs256(id_token), id_token["jti"], expires


def _issue(client, user, scopes, nonce, authentication, *, source_refresh_token, family):
    """The token response's body, and the rows to insert: the ID token, then the access token
    (``id_token``: the ID token's id), then the refresh token (``access_token``: the access
    token's id), as (inserter, values, the field that takes the previous row's id)."""
    now = timezone.now()
    lifetime = oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS
    # 240 random bits each, base64url (RFC 6750 §2.1 b64token): oauthlib's generator draws
    # 30 characters one by one (~178 bits), ten times slower.
    access, refresh = secrets.token_urlsafe(30), secrets.token_urlsafe(30)
    scope = " ".join(scopes)
    signed, jti, id_expires = _id_token(client, user, scopes, nonce, access, authentication)
    id_token = {
        "user": user.pk,
        "application": client.pk,
        "jti": uuid.UUID(jti),
        "expires": id_expires,
        "scope": scope,
        "created": now,
        "updated": now,
    }
    # RFC 9700 token storage (COMPLIANT_BCP_RFC9700_TOKEN_STORAGE): the checksum only.
    access_token = {
        "user": user.pk,
        "token": "",
        "token_checksum": hashlib.sha256(access.encode()).hexdigest(),
        "application": client.pk,
        "expires": now + timedelta(seconds=lifetime),
        "scope": scope,
        "resource": [],
        "created": now,
        "updated": now,
    }
    if source_refresh_token is not None:
        access_token["source_refresh_token"] = source_refresh_token
    refresh_token = {
        "user": user.pk,
        "token": "",
        "token_checksum": hashlib.sha256(refresh.encode()).hexdigest(),
        "application": client.pk,
        "token_family": family,
        "resource": [],
        "created": now,
        "updated": now,
    }
    rows = [
        (_ID_TOKEN, id_token, None),
        (_ACCESS_TOKEN, access_token, "id_token"),
        (_REFRESH_TOKEN, refresh_token, "access_token"),
    ]
    body = {
        "access_token": access,
        "expires_in": lifetime,
        "token_type": "Bearer",
        "scope": scope,
        "refresh_token": refresh,
        "id_token": signed,
    }
    return body, rows


def _insert_each(rows, extras):
    """The rows, one INSERT each (in the caller's transaction)."""
    previous = None
    for inserter, values, link in rows:
        previous = inserter({**values, link: previous} if link else values)
    for inserter, values in extras:
        inserter(values)


_AT_ONCE = {}  # (alias, gate, the rows' shapes) -> (the statement's SQL, each row's fields)


def _at_once_sql(connection, gate, rows, extras):
    quote = connection.ops.quote_name
    parts, fields_of = [gate], []
    source = "g"
    for index, (inserter, values, link) in enumerate(rows):
        model = inserter.model
        fields = [model._meta.get_field(name) for name in values]
        columns = [quote(field.column) for field in fields]
        selected = ["%s"] * len(fields)
        if link:
            columns.append(quote(model._meta.get_field(link).column))
            selected.append(f"{source}.{quote('id')}")
        name = f"c{index}"
        parts.append(
            f"{name} AS (INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)})"  # noqa: S608
            f" SELECT {', '.join(selected)} FROM {source}"
            f" RETURNING {quote(model._meta.pk.column)} AS {quote('id')})"
        )
        fields_of.append(fields)
        source = name
    for index, (inserter, values) in enumerate(extras):
        model = inserter.model
        fields = [model._meta.get_field(name) for name in values]
        columns = ", ".join(quote(field.column) for field in fields)
        parts.append(
            f"x{index} AS (INSERT INTO {quote(model._meta.db_table)} ({columns})"  # noqa: S608
            f" SELECT {', '.join(['%s'] * len(fields))} FROM g)"
        )
        fields_of.append(fields)
    sql = "WITH " + ", ".join(parts) + f" SELECT count(*) FROM {source}"  # noqa: S608
    return sql, fields_of


def _write_at_once(alias, gate, gate_params, rows, extras) -> bool:
    """PostgreSQL: the gate (the code's DELETE, the refresh token's UPDATE … RETURNING id) and
    every INSERT in one statement, its own transaction: each INSERT selects from the gate, so
    when the gate changed no row (a concurrent request consumed it first) nothing is inserted.
    Whether the rows were inserted. The SQL is written once per shape of rows."""
    connection = connections[alias]
    key = (
        alias,
        gate,
        tuple((id(inserter), tuple(values), link) for inserter, values, link in rows),
        tuple((id(inserter), tuple(values)) for inserter, values in extras),
    )
    compiled = _AT_ONCE.get(key)
    if compiled is None:
        compiled = _AT_ONCE[key] = _at_once_sql(connection, gate, rows, extras)
    sql, fields_of = compiled
    params = list(gate_params)
    every = [values for _, values, _ in rows] + [values for _, values in extras]
    for fields, values in zip(fields_of, every, strict=True):
        params += [
            field.get_db_prep_save(value, connection)
            for field, value in zip(fields, values.values(), strict=True)
        ]
    atomic = transaction.atomic(using=alias) if connection.in_atomic_block else nullcontext()
    with atomic, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0] == 1


def _response(body, status=200):
    response = HttpResponse(json.dumps(body), status=status)
    for name, value in _HEADERS.items():
        response[name] = value
    return response


def _plain_settings() -> bool:
    """The settings the lean path reproduces; other ones go to the toolkit."""
    return (
        not app_authorized.has_listeners()  # sent by the toolkit's view, never here
        and oauth2_settings.ROTATE_REFRESH_TOKEN
        and oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION
        and oauth2_settings.COMPLIANT_BCP_RFC9700_TOKEN_STORAGE
        and isinstance(oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS, int)
        and oauth2_settings.ACCESS_TOKEN_GENERATOR is None
        and oauth2_settings.REFRESH_TOKEN_GENERATOR is None
    )


# --- the two grants ----------------------------------------------------------------------------


def _code_exchange(request):
    fields = _single_valued(request, _CODE_FIELDS)
    if fields is None or not {"code", "redirect_uri", "code_verifier"} <= fields.keys():
        return None
    credentials = _credentials(request, fields)
    if credentials is None:
        return None
    grant = _GRANT.get(fields["code"])
    if grant is None or not _authenticated(grant.application, credentials):
        return None  # unknown, replayed, another client's, or a failed authentication
    client = grant.application
    if grant.is_expired():
        return None
    if grant.resource or (grant.claims and json.loads(grant.claims)):
        return None
    scopes = grant.scope.split(" ") if grant.scope else []
    if "openid" not in scopes or not grant.redirect_uri_allowed(fields["redirect_uri"]):
        return None
    # PKCE (RFC 7636 §4.6), S256 only (settings: COMPLIANT_BCP_RFC9700_PKCE_METHOD).
    verifier = fields["code_verifier"]
    if grant.code_challenge_method != "S256" or not _VERIFIER.match(verifier):
        return None
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    if not hmac.compare_digest(computed, grant.code_challenge.encode()):
        return None
    authentication = _authentication(grant.portail_authentication)
    family = uuid.uuid4()
    body, rows = _issue(
        client,
        grant.user,
        scopes,
        grant.nonce or None,
        authentication,
        source_refresh_token=None,
        family=family,
    )
    # A replay of this code revokes this family (RFC 6749 §4.1.2, oidc.py).
    extras = [
        (
            _SPENT_CODE,
            {
                "digest": oidc._code_digest(fields["code"]),
                "client": client.pk,
                "token_family": family,
                "expires_at": timezone.now()
                + timedelta(seconds=oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS),
            },
        )
    ]
    if authentication is not None:
        auth_time, sid, amr = authentication
        values = {"token_family": family, "auth_time": auth_time, "sid": sid or ""}
        extras.append((_AUTHORIZATION_TIME, {**values, "amr": amr or ["pwd"]}))
    # The code is consumed with the storage of its tokens: of two concurrent exchanges, the
    # second finds nothing to delete (it waits for the first's commit) and stores nothing.
    alias = router.db_for_write(type(grant))
    try:
        if connections[alias].vendor == "postgresql":
            gate, params = _code_gate(alias, grant.pk, client.pk)
            if not _write_at_once(alias, gate, params, rows, extras):
                raise _AlreadyUsed
        else:
            with transaction.atomic(using=alias):
                _DELETE_CODE_AUTHENTICATION([grant.pk])
                deleted, _ = _DELETE_CODE([grant.pk, client.pk])
                if not deleted:
                    raise _AlreadyUsed
                _insert_each(rows, extras)
    except (_AlreadyUsed, IntegrityError):
        return None  # the toolkit's path: invalid_grant, and the first exchange's tokens revoked
    return _response(body)


def _code_gate(alias, grant, client):
    return _code_gate_sql(alias), [grant, grant, client]


@functools.cache
def _code_gate_sql(alias):
    quote = connections[alias].ops.quote_name
    times = AuthorizationTime._meta
    codes = get_grant_model()._meta
    gate = (
        f"t AS (DELETE FROM {quote(times.db_table)} WHERE {quote('grant_id')} = %s), "  # noqa: S608
        f"g AS (DELETE FROM {quote(codes.db_table)} WHERE {quote('id')} = %s"
        f" AND {quote('application_id')} = %s RETURNING {quote('id')})"
    )
    return gate


def _refresh_gate(alias, previous, access, now):
    return _refresh_gate_sql(alias), [now, now, previous, access]


@functools.cache
def _refresh_gate_sql(alias):
    quote = connections[alias].ops.quote_name
    refresh_tokens = get_refresh_token_model()._meta
    access_tokens = get_access_token_model()._meta
    gate = (
        f"g AS (UPDATE {quote(refresh_tokens.db_table)} SET {quote('revoked')} = %s,"  # noqa: S608
        f" {quote('access_token_id')} = NULL, {quote('updated')} = %s"
        f" WHERE {quote('id')} = %s AND {quote('revoked')} IS NULL RETURNING {quote('id')}), "
        f"d AS (DELETE FROM {quote(access_tokens.db_table)} WHERE {quote('id')} = %s"
        f" AND EXISTS (SELECT 1 FROM g))"
    )
    return gate


def _refresh(request):
    fields = _single_valued(request, _REFRESH_FIELDS)
    if fields is None or "refresh_token" not in fields:
        return None
    credentials = _credentials(request, fields)
    if credentials is None:
        return None
    value = fields["refresh_token"]
    previous = _REFRESH.get(hashlib.sha256(value.encode()).hexdigest())
    if previous is None or not _authenticated(previous.application, credentials):
        return None  # unknown, revoked (reuse detection), another client's, failed authentication
    client = previous.application
    if previous.token_family is None:
        return None
    access = previous.access_token
    if access is None:
        return None
    # The toolkit's sliding expiry (REFRESH_TOKEN_EXPIRE_SECONDS after the access token's).
    lifetime = oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS
    if (
        not isinstance(lifetime, int)
        or access.expires + timedelta(seconds=lifetime) <= timezone.now()
    ):
        return None
    authentication = _authentication(previous.portail_authentication)
    if oidc._family_ended(previous.token_family, authentication[0] if authentication else None):
        return None  # invalid_grant from the validator: the user must log in again
    scopes = access.scope.split() if access.scope else []
    if "openid" not in scopes:
        return None
    body, rows = _issue(
        client,
        previous.user,
        scopes,
        None,
        authentication,
        source_refresh_token=previous.pk,
        family=previous.token_family,
    )
    alias = router.db_for_write(type(previous))
    now = _REVOKE_REFRESH_TOKEN.db_value("revoked", timezone.now())
    try:
        if connections[alias].vendor == "postgresql":
            gate, params = _refresh_gate(alias, previous.pk, access.pk, now)
            if not _write_at_once(alias, gate, params, rows, []):
                raise _AlreadyUsed
        else:
            with transaction.atomic(using=alias):
                # RefreshToken.revoke(): only one of two concurrent refreshes finds the row
                # unrevoked (the other waits for this commit, then changes nothing) ...
                revoked, _ = _REVOKE_REFRESH_TOKEN([now, now, previous.pk])
                if not revoked:
                    raise _AlreadyUsed
                # ... and deletes its access token (nothing else refers to it: SET_NULL above).
                _DELETE_ACCESS_TOKEN([access.pk])
                _insert_each(rows, [])
    except _AlreadyUsed:
        error = errors.InvalidGrantError(description="Refresh token already used.")
        return _response(json.loads(error.json), status=error.status_code)
    except IntegrityError:
        return None
    return _response(body)


def answer(request):
    """The token response for a valid authorization_code or refresh_token request, or None."""
    if not _plain_settings():
        return None
    grant_type = request.POST.get("grant_type")
    if grant_type == "authorization_code":
        return _code_exchange(request)
    if grant_type == "refresh_token":
        return _refresh(request)
    return None


def _load_signing_key():
    """Parse the key when this module loads (with the URLconf, at a server process's first
    request of any kind) rather than at its first token request: the RSA key's validation costs
    ~60 ms of CPU, once per process. A key that cannot be read fails at the token request, as
    the toolkit's path would."""
    if oauth2_settings.OIDC_RSA_PRIVATE_KEY:
        with suppress(ValueError, TypeError, JWException):
            _signing_key()


_load_signing_key()
