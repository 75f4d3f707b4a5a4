"""A SAML identity provider that plays ÉduConnect: pysaml2's own IdP (saml2.server.Server),
signing with its key through xmlsec1, as the real one does. Used by the test client tests and,
behind a small HTTP server, by the browser test."""

import base64
import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_TRANSIENT
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from portail.federation.idp.keys import generate_pair

PASSWORD_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


class EduConnectIdP:
    def __init__(
        self,
        directory: Path,
        base_url: str,
        sp_metadata: str,
        *,
        entity_id=None,
        lifetime_seconds=300,
        name="idp",
    ):
        self.base_url = base_url.rstrip("/")
        self.entity_id = entity_id or self.base_url + "/idp"
        key, cert = directory / f"{name}.key", directory / f"{name}.crt"
        if not key.exists():
            generate_pair(key, cert, "test")
        config = IdPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "xmlsec_binary": "/usr/bin/xmlsec1",
                "key_file": str(key),
                "cert_file": str(cert),
                "metadata": {
                    "inline": sp_metadata if isinstance(sp_metadata, list) else [sp_metadata]
                },
                "allow_unknown_attributes": True,
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [
                                (self.base_url + "/sso", BINDING_HTTP_REDIRECT)
                            ],
                            "single_logout_service": [
                                (self.base_url + "/slo", BINDING_HTTP_REDIRECT)
                            ],
                        },
                        "policy": {
                            "default": {
                                "lifetime": {"seconds": lifetime_seconds},
                                "attribute_restrictions": None,
                                "name_form": NAME_FORMAT_BASIC,
                            }
                        },
                        "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                    }
                },
            }
        )
        self.server = Server(config=config)
        self.metadata = create_metadata_string(None, config=config, valid=24).decode()
        self.logouts = []

    def write_metadata(self, path: Path) -> Path:
        path.write_text(self.metadata)
        return path

    def request_id(self, location: str) -> str:
        """The ID of the AuthnRequest the portal sent (HTTP-Redirect), its signature checked."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        request = self.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
        return request.message.id

    def response(
        self,
        request_id: str,
        attributes: dict,
        *,
        acs: str,
        audience: str,
        sign_assertion=True,
        sign_response=False,
    ) -> str:
        xml = self.server.create_authn_response(
            identity=attributes,
            in_response_to=request_id,
            destination=acs,
            sp_entity_id=audience,
            name_id_policy=None,
            userid="educonnect-user",
            authn={"class_ref": PASSWORD_CONTEXT, "authn_auth": self.entity_id},
            sign_assertion=sign_assertion,
            sign_response=sign_response,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        return str(xml)

    @staticmethod
    def encode(xml: str) -> str:
        return base64.b64encode(xml.encode()).decode()


PAGE = (
    '<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>ÉduConnect (test)</title>'
    "<style>button {{ min-height: 44px; margin: 8px; padding: 8px 16px; }}</style>"
    "</head><body><main><h1>ÉduConnect (test)</h1>{body}</main></body></html>"
)


def portal_sp_metadata(base: str, key_file: str, cert_file: str, entity: str | None = None):
    """The portal's SP metadata as the IdP registers it (made by pysaml2 from the same endpoints
    as portail.federation.login.educonnect; the portal's own needs an IdP configured first)."""
    from saml2.config import SPConfig

    config = SPConfig()
    config.load(
        {
            "entityid": entity or base + "/federation/educonnect/metadata",
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "key_file": key_file,
            "cert_file": cert_file,
            "service": {
                "sp": {
                    "endpoints": {
                        "assertion_consumer_service": [
                            (base + "/federation/educonnect/acs", BINDING_HTTP_POST)
                        ],
                        "single_logout_service": [
                            (base + "/federation/educonnect/slo", BINDING_HTTP_REDIRECT)
                        ],
                    },
                    "authn_requests_signed": True,
                }
            },
        }
    )
    return create_metadata_string(None, config=config).decode()


class IdPHTTPServer:
    """The IdP on a loopback port, for the browser: /sso shows a « connexion » page whose
    button posts the signed response to the portal's ACS (as ÉduConnect's own page does)."""

    def __init__(self, make_idp, attributes_for: dict, acs: str, audience: str):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.idp = make_idp(self.base_url)
        self.attributes_for = attributes_for
        self.acs, self.audience = acs, audience
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/sso":
                    request_id = outer.idp.request_id(self.path)
                    forms = []
                    for label, attributes in outer.attributes_for.items():
                        xml = outer.idp.response(
                            request_id, attributes, acs=outer.acs, audience=outer.audience
                        )
                        forms.append(
                            f'<form method="post" action="{html.escape(outer.acs)}">'
                            f'<input type="hidden" name="SAMLResponse" '
                            f'value="{EduConnectIdP.encode(xml)}">'
                            f"<button>{html.escape(label)}</button></form>"
                        )
                    self._send(200, PAGE.format(body="".join(forms)))
                elif parts.path == "/slo":
                    outer.idp.logouts.append(query)
                    self._send(200, PAGE.format(body="<p>Vous êtes déconnecté d'ÉduConnect.</p>"))
                else:
                    self._send(404, "not found")

        return Handler


def moving_on(response) -> str:
    """The URL a « leaving » page (meta refresh) sends the browser to."""
    import html as _html
    import re as _re

    assert response.status_code == 200, response.status_code
    found = _re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', response.content.decode())
    return _html.unescape(found.group(1))
