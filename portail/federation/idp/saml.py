"""pysaml2's IdP (saml2.server.Server), configured from settings and the registered providers.

Every signature and its check is pysaml2's, through Debian's xmlsec1: no XML signature code here.
A Server is built per request with the metadata of the one provider concerned (or of all of
them, for the metadata-less steps), so a provider registered or removed in the admin is seen at
once on every node.
"""

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

from django.conf import settings
from django.urls import reverse
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.sdb import SessionStorage
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from .keys import signing_files
from .models import NAMEID_PERSISTENT, NAMEID_TRANSIENT

# No SHA-1 anywhere (OWASP ASVS 5.0 V11.4.1: approved hash functions only).
SIGN_ALG = SIG_RSA_SHA256
DIGEST_ALG = DIGEST_SHA256
ATTRIBUTE_MAPS = str(Path(__file__).resolve().parent / "attributemaps")


def base_url() -> str:
    return settings.PORTAIL_BASE_URL.rstrip("/")


def entity_id() -> str:
    return settings.PORTAIL_SAML_ENTITY_ID or base_url() + reverse("federation_idp:metadata")


def sso_url() -> str:
    return base_url() + reverse("federation_idp:sso")


def slo_url() -> str:
    return base_url() + reverse("federation_idp:slo")


def _config(metadata_xml: list[str], *, want_signed_requests: bool = False) -> IdPConfig:
    key, cert = signing_files()
    conf = {
        "entityid": entity_id(),
        "xmlsec_binary": settings.PORTAIL_SAML_XMLSEC_BINARY,
        "attribute_map_dir": ATTRIBUTE_MAPS,
        "key_file": key,
        "cert_file": cert,
        "metadata": {"inline": metadata_xml} if metadata_xml else {},
        # SAML 2.0 Core §1.3.3 / Profiles §4.1.4.3: some leeway for the clocks of the providers.
        "accepted_time_diff": settings.PORTAIL_SAML_CLOCK_SKEW_SECONDS,
        "signing_algorithm": SIGN_ALG,
        "digest_algorithm": DIGEST_ALG,
        "service": {
            "idp": {
                "name": "Portail ENT",
                "endpoints": {
                    "single_sign_on_service": [
                        (sso_url(), BINDING_HTTP_REDIRECT),
                        (sso_url(), BINDING_HTTP_POST),
                    ],
                    "single_logout_service": [
                        (slo_url(), BINDING_HTTP_REDIRECT),
                        (slo_url(), BINDING_HTTP_POST),
                    ],
                },
                "name_id_format": [NAMEID_PERSISTENT, NAMEID_TRANSIENT],
                "want_authn_requests_signed": want_signed_requests,
                "sign_response": True,
                "sign_assertion": True,
                "policy": {
                    "default": {
                        "lifetime": {"seconds": settings.PORTAIL_SAML_ASSERTION_SECONDS},
                        "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
                        # The release list of each provider is applied before (services.py).
                        "attribute_restrictions": None,
                    }
                },
            }
        },
    }
    config = IdPConfig()
    config.load(conf)
    return config


# Building a Server loads the signing key twice (its metadata store and its own security
# context), and cryptography checks an RSA 3072 key for ~0.3 s each time: the servers are kept,
# per thread (a Server is not thread-safe) and per provider metadata and settings.
_local = threading.local()
SERVERS_PER_THREAD = 32


def _key_version():
    """The key and certificate files, and when they changed (a new pair replaces the cached)."""
    files = signing_files()
    return files, tuple(Path(f).stat().st_mtime_ns for f in files)


def _server_key(providers, want_signed_requests):
    return (
        tuple(
            (p.pk, p.entity_id, hashlib.sha256(p.metadata_xml.encode()).hexdigest())
            for p in providers
        ),
        want_signed_requests,
        entity_id(),
        _key_version(),
        base_url(),
        settings.PORTAIL_SAML_ASSERTION_SECONDS,
        settings.PORTAIL_SAML_CLOCK_SKEW_SECONDS,
        settings.PORTAIL_SAML_XMLSEC_BINARY,
    )


def server(providers=(), *, want_signed_requests: bool = False) -> Server:
    """pysaml2's Server for these providers, with no state left from an earlier request."""
    cache = getattr(_local, "servers", None)
    if cache is None:
        cache = _local.servers = OrderedDict()
    key = _server_key(providers, want_signed_requests)
    found = cache.get(key)
    if found is None:
        found = Server(
            config=_config(
                [p.metadata_xml for p in providers], want_signed_requests=want_signed_requests
            )
        )
        cache[key] = found
        while len(cache) > SERVERS_PER_THREAD:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    # What pysaml2 remembers of the assertions it issued: this request's only.
    found.session_db = SessionStorage()
    return found


_metadata_cache: dict = {}


def metadata_xml() -> str:
    """The IdP's EntityDescriptor (signing certificate, SSO and SLO endpoints, both bindings)."""
    key = (entity_id(), _key_version(), base_url())
    if key not in _metadata_cache:
        _metadata_cache.clear()
        _metadata_cache[key] = str(entity_descriptor(_config([])))
    return _metadata_cache[key]
