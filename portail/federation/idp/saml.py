"""pysaml2's IdP (saml2.server.Server), configured from settings and the registered providers.

Every signature and its check is pysaml2's, through Debian's xmlsec1: no XML signature code here.
A Server is built per request with the metadata of the one provider concerned (or of all of
them, for the metadata-less steps), so a provider registered or removed in the admin is seen at
once on every node.
"""

from pathlib import Path

from django.conf import settings
from django.urls import reverse
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
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


def server(providers=(), *, want_signed_requests: bool = False) -> Server:
    return Server(
        config=_config(
            [p.metadata_xml for p in providers], want_signed_requests=want_signed_requests
        )
    )


def metadata_xml() -> str:
    """The IdP's EntityDescriptor (signing certificate, SSO and SLO endpoints, both bindings)."""
    descriptor = entity_descriptor(_config([]))
    return str(descriptor)
