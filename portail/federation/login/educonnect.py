"""The portal as a SAML 2.0 service provider of ÉduConnect (issue 11, §2).

Every check of a response is pysaml2's (with Debian's xmlsec1): XML signature on the response or
the assertion against the IdP's certificate from its metadata, issuer known in the metadata,
audience (our entity ID), recipient and destination (our ACS), time window (NotBefore,
NotOnOrAfter, PORTAIL_EDUCONNECT_CLOCK_SKEW), InResponseTo (the request this browser's session
sent: no unsolicited response). What pysaml2 does not keep across processes, the assertion IDs
already used, is the SeenAssertion table (replay). No hand-written XML signature code.
"""

import contextlib
import datetime
import hashlib
import logging
import threading
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.s_utils import UnknownPrincipal, UnsupportedBinding
from saml2.saml import NAMEID_FORMAT_TRANSIENT
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from portail.federation.idp.keys import generate_pair
from portail.federation.messages import MessageTooLarge, check_size

from .fetch import FetchError, fetch
from .models import SeenAssertion

log = logging.getLogger(__name__)

XMLSEC1 = "/usr/bin/xmlsec1"
METADATA_CACHE_SECONDS = 3600


class Refused(Exception):
    """A response that is not accepted; the text is for the log, never shown."""


def enabled() -> bool:
    return bool(settings.PORTAIL_EDUCONNECT_METADATA)


def entity_id() -> str:
    return settings.PORTAIL_BASE_URL + reverse("federation_login:educonnect-metadata")


def _key_and_cert() -> tuple[str, str]:
    """Paths of the SP key and certificate: configured, or self-signed under var/ (dev, tests)."""
    if settings.PORTAIL_EDUCONNECT_KEY and settings.PORTAIL_EDUCONNECT_CERT:
        return settings.PORTAIL_EDUCONNECT_KEY, settings.PORTAIL_EDUCONNECT_CERT
    key_path = Path(settings.VAR_DIR) / "educonnect-sp.key"
    cert_path = Path(settings.VAR_DIR) / "educonnect-sp.crt"
    if not (key_path.exists() and cert_path.exists()):
        generate_pair(key_path, cert_path, "Portail ENT (ÉduConnect SP)")
    return str(key_path), str(cert_path)


def idp_metadata() -> str:
    """The IdP metadata's XML: the file, or the URL's answer (through the guard, cached 1 h)."""
    source = settings.PORTAIL_EDUCONNECT_METADATA
    if not source.startswith(("http://", "https://")):
        return Path(source).read_text()
    key = "federation:educonnect:metadata:" + hashlib.sha256(source.encode()).hexdigest()
    text = cache.get(key)
    if text is None:
        text = fetch(source).decode()
        cache.set(key, text, METADATA_CACHE_SECONDS)
    return text


_clients: dict = {}
_lock = threading.Lock()


def client() -> Saml2Client:
    """pysaml2's SP client for the current settings and metadata (built once per process)."""
    metadata = idp_metadata()
    key_file, cert_file = _key_and_cert()
    base = settings.PORTAIL_BASE_URL
    signature = (
        metadata,
        key_file,
        cert_file,
        base,
        settings.PORTAIL_EDUCONNECT_CLOCK_SKEW,
    )
    with _lock:
        cached = _clients.get(signature)
        if cached is not None:
            return cached
    config = SPConfig()
    config.load(
        {
            "entityid": entity_id(),
            "xmlsec_binary": XMLSEC1,
            "key_file": key_file,
            "cert_file": cert_file,
            "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
            "metadata": {"inline": [metadata]},
            "accepted_time_diff": settings.PORTAIL_EDUCONNECT_CLOCK_SKEW,
            "allow_unknown_attributes": True,
            # RSA-SHA256 only: no SHA-1 (OWASP ASVS 5.0 V11.3).
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "service": {
                "sp": {
                    "name": "Portail ENT",
                    "endpoints": {
                        "assertion_consumer_service": [
                            (base + reverse("federation_login:educonnect-acs"), BINDING_HTTP_POST)
                        ],
                        "single_logout_service": [
                            (
                                base + reverse("federation_login:educonnect-slo"),
                                BINDING_HTTP_REDIRECT,
                            )
                        ],
                    },
                    "allow_unsolicited": False,
                    "authn_requests_signed": True,
                    "logout_requests_signed": True,
                    "want_response_signed": False,
                    "want_assertions_signed": False,
                    "want_assertions_or_response_signed": True,
                    "only_use_keys_in_metadata": True,
                    "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                    "name_id_format_allow_create": True,
                }
            },
        }
    )
    built = Saml2Client(config=config)
    with _lock:
        _clients.clear()  # settings changed (tests): drop the former clients
        _clients[signature] = built
    return built


def sp_metadata() -> str:
    client()  # the key and certificate exist
    return create_metadata_string(None, config=client().config, valid=24 * 365).decode()


def idp_entity_id(saml_client: Saml2Client) -> str:
    idps = list(saml_client.metadata.identity_providers())
    if len(idps) != 1:
        raise Refused(f"the metadata names {len(idps)} identity providers, not one")
    return idps[0]


def authn_request() -> tuple[str, str]:
    """(request id, URL of the IdP to send the browser to): an AuthnRequest, HTTP-Redirect."""
    saml_client = client()
    request_id, info = saml_client.prepare_for_authenticate(
        entityid=idp_entity_id(saml_client),
        binding=BINDING_HTTP_REDIRECT,
        sigalg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    location = dict(info["headers"])["Location"]
    return request_id, location


def _attributes(assertion) -> dict[str, list[str]]:
    """Every attribute by its Name and its FriendlyName, values as text."""
    found: dict[str, list[str]] = {}
    for statement in assertion.attribute_statement or []:
        for attribute in statement.attribute or []:
            values = [v.text.strip() for v in attribute.attribute_value or [] if v.text]
            for name in (attribute.name, attribute.friendly_name):
                if name:
                    found.setdefault(name, []).extend(values)
    return found


def check_response(saml_response: str, request_id: str | None) -> dict:
    """The checked assertion's facts, or Refused. `request_id`: the AuthnRequest this session sent."""
    if not request_id:
        raise Refused("no AuthnRequest outstanding in this session")
    saml_client = client()
    try:
        check_size(saml_response, BINDING_HTTP_POST)
        response = saml_client.parse_authn_request_response(
            saml_response, BINDING_HTTP_POST, outstanding={request_id: "/"}
        )
    except Exception as exc:  # pysaml2 raises many kinds; each one is a refusal
        raise Refused(f"{type(exc).__name__}: {exc}") from None
    if response is None or response.assertion is None:
        raise Refused("no assertion")
    if response.name_id is not None:
        # pysaml2 keeps what it parsed in a per-process cache we never read: do not let it grow.
        with contextlib.suppress(Exception):
            saml_client.users.remove_person(response.name_id)
    if (
        len(response.response.assertion or []) + len(response.response.encrypted_assertion or [])
        != 1
    ):
        # One assertion per response (SAML profiles §4.1.4.2 allows more; ÉduConnect sends one):
        # a second one is how signature wrapping slips an unsigned assertion in.
        raise Refused("more than one assertion")
    if response.in_response_to != request_id:
        raise Refused("InResponseTo is not this session's request")
    assertion = response.assertion
    issuer = response.issuer()
    if issuer != idp_entity_id(saml_client):
        raise Refused(f"issuer {issuer!r} is not the configured identity provider")
    conditions = assertion.conditions
    not_on_or_after = None
    if conditions is not None and conditions.not_on_or_after:
        from saml2.time_util import str_to_time

        not_on_or_after = datetime.datetime.fromtimestamp(
            __import__("calendar").timegm(str_to_time(conditions.not_on_or_after)), datetime.UTC
        )
    _remember_assertion(assertion.id, issuer, not_on_or_after)
    session_index = None
    for statement in assertion.authn_statement or []:
        session_index = statement.session_index or session_index
    return {
        "issuer": issuer,
        "assertion_id": assertion.id,
        "name_id": str(response.name_id) if response.name_id is not None else "",
        "session_index": session_index or "",
        "attributes": _attributes(assertion),
    }


def _remember_assertion(assertion_id: str, issuer: str, not_on_or_after):
    now = timezone.now()
    # Kept at least a day past its end: an assertion is never good twice (replay, ASVS V10.4).
    expires = max(not_on_or_after or now, now) + datetime.timedelta(days=1)
    SeenAssertion.objects.filter(expires_at__lt=now).delete()
    try:
        with transaction.atomic():
            SeenAssertion.objects.create(
                assertion_id=assertion_id, issuer=issuer, expires_at=expires
            )
    except IntegrityError:
        raise Refused(f"assertion {assertion_id} already used (replay)") from None


def jointure(attributes: dict[str, list[str]]) -> str:
    for name in settings.PORTAIL_EDUCONNECT_JOINTURE_ATTRIBUTES:
        for value in attributes.get(name, []):
            if value:
                return value
    return ""


def logout_redirect(state: dict) -> str | None:
    """The IdP's single logout URL for this federated session (a signed LogoutRequest,
    HTTP-Redirect), or None when its metadata has no SLO endpoint."""
    try:
        saml_client = client()
        idp = idp_entity_id(saml_client)
        services = saml_client.metadata.single_logout_service(idp, BINDING_HTTP_REDIRECT, "idpsso")
    except (Refused, FetchError, OSError, UnsupportedBinding, UnknownPrincipal) as exc:
        log.warning("ÉduConnect single logout unavailable: %s", exc)
        return None
    if not services or not state.get("name_id"):
        return None
    destination = services[0]["location"]
    name_id = saml.name_id_from_string(state["name_id"])
    _, request = saml_client.create_logout_request(
        destination,
        idp,
        name_id=name_id,
        session_indexes=[state["session_index"]] if state.get("session_index") else None,
        sign=False,  # HTTP-Redirect: the query string carries the signature
    )
    info = saml_client.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(request),
        destination,
        relay_state="",
        sign=True,
        sigalg=SIG_RSA_SHA256,
    )
    return dict(info["headers"])["Location"]


def check_logout_message(query: dict):
    """An IdP's LogoutResponse or LogoutRequest at our SLO endpoint. Returns
    ("response", None) or ("request", URL of our signed LogoutResponse), or raises Refused."""
    for name in ("SAMLResponse", "SAMLRequest"):
        if name in query:
            try:
                check_size(query[name], BINDING_HTTP_REDIRECT)
            except MessageTooLarge as exc:
                raise Refused(f"MessageTooLarge: {exc}") from None
    saml_client = client()
    try:
        if "SAMLResponse" in query:
            saml_client.parse_logout_request_response(query["SAMLResponse"], BINDING_HTTP_REDIRECT)
            return "response", None
        if "SAMLRequest" in query:
            request = saml_client.parse_logout_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
            if request.message.issuer.text != idp_entity_id(saml_client):
                raise Refused("LogoutRequest from another issuer")
            idp = idp_entity_id(saml_client)
            services = saml_client.metadata.single_logout_service(
                idp, BINDING_HTTP_REDIRECT, "idpsso"
            )
            response = saml_client.create_logout_response(
                request.message, [BINDING_HTTP_REDIRECT], sign=False
            )
            destination = services[0].get("response_location") or services[0]["location"]
            info = saml_client.apply_binding(
                BINDING_HTTP_REDIRECT,
                str(response),
                destination,
                relay_state=query.get("RelayState", ""),
                response=True,
                sign=True,
                sigalg=SIG_RSA_SHA256,
            )
            return "request", dict(info["headers"])["Location"]
    except Refused:
        raise
    except Exception as exc:
        raise Refused(f"{type(exc).__name__}: {exc}") from None
    raise Refused("neither SAMLRequest nor SAMLResponse")
