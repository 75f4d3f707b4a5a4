"""A SAML service provider the project does not otherwise use: pysaml2's Saml2Client as an SP.

It plays a GAR resource against a running portal (the Django live server): it fetches the IdP's
metadata over HTTP, sends AuthnRequests (HTTP-Redirect or HTTP-POST, signed or not), validates
the Responses as a real SP does (signature, audience, recipient/destination, time window,
InResponseTo) and keeps a replay cache of assertion IDs, and it runs a small HTTP server that
receives the portal's front-channel LogoutRequests and checks their signature.
"""

import base64
import re
import threading
import urllib.request
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from portail.federation.idp.keys import generate_pair
from tests.servers import free_port

ATTRIBUTE_MAPS = str(
    Path(__file__).resolve().parents[2] / "portail" / "federation" / "idp" / "attributemaps"
)


class Replayed(Exception):
    pass


class TestSP:
    __test__ = False  # not a test class

    def __init__(
        self,
        tmp_path: Path,
        idp_metadata_url: str,
        *,
        sign_requests=False,
        name="sp",
        slo_binding=BINDING_HTTP_REDIRECT,
    ):
        self.sign_requests = sign_requests
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.entity_id = f"{self.base}/{name}/metadata"
        self.acs = f"{self.base}/{name}/acs"
        self.slo = f"{self.base}/{name}/slo"
        key, cert = tmp_path / f"{name}-key.pem", tmp_path / f"{name}-cert.pem"
        generate_pair(key, cert, f"test SP {name}")
        with urllib.request.urlopen(idp_metadata_url, timeout=10) as answer:  # noqa: S310
            self.idp_metadata = answer.read().decode()
        self.config = SPConfig()
        self.config.load(
            {
                "entityid": self.entity_id,
                "xmlsec_binary": "/usr/bin/xmlsec1",
                "attribute_map_dir": ATTRIBUTE_MAPS,
                "key_file": str(key),
                "cert_file": str(cert),
                "encryption_keypairs": [{"key_file": str(key), "cert_file": str(cert)}],
                "metadata": {"inline": [self.idp_metadata]},
                "accepted_time_diff": 0,
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
                "service": {
                    "sp": {
                        "endpoints": {
                            "assertion_consumer_service": [(self.acs, BINDING_HTTP_POST)],
                            "single_logout_service": [(self.slo, slo_binding)],
                        },
                        "authn_requests_signed": sign_requests,
                        "want_response_signed": True,
                        "want_assertions_signed": True,
                        "allow_unsolicited": True,  # IdP-initiated SSO
                        "name_id_format": NAMEID_FORMAT_PERSISTENT,
                    }
                },
            }
        )
        self.client = Saml2Client(config=self.config)
        self.seen_assertions: set[str] = set()
        self.logout_requests: list[dict] = []
        self.outstanding: dict[str, str] = {}  # AuthnRequests sent by the browser flow
        self.logins: list[dict] = []  # what the ACS accepted (or refused) in the browser flow
        self._serve()

    # --- Metadata ---------------------------------------------------------------------------

    def metadata(self) -> str:
        return str(entity_descriptor(self.config))

    @property
    def idp_entity_id(self) -> str:
        return next(iter(self.client.metadata.identity_providers()))

    # --- Login --------------------------------------------------------------------------------

    def authn_request(self, binding=BINDING_HTTP_REDIRECT, relay_state="/manuel"):
        """(request id, HTTP args) of a new AuthnRequest towards the portal."""
        request_id, info = self.client.prepare_for_authenticate(
            entityid=self.idp_entity_id,
            relay_state=relay_state,
            binding=binding,
            sigalg=SIG_RSA_SHA256 if self.sign_requests else None,
            digest_alg=DIGEST_SHA256,
        )
        return request_id, info

    def consume(self, saml_response: str, outstanding: dict | None):
        """Validate a Response as the SP's ACS does; raises on any defect or on a replay."""
        response = self.client.parse_authn_request_response(
            saml_response, BINDING_HTTP_POST, outstanding=outstanding
        )
        if response is None:
            raise ValueError("no valid response")
        assertion_id = response.assertion.id
        if assertion_id in self.seen_assertions:
            raise Replayed(assertion_id)
        self.seen_assertions.add(assertion_id)
        return response

    # --- Front-channel logout receiver -------------------------------------------------------

    def _serve(self):
        sp = self

        class Handler(BaseHTTPRequestHandler):
            def _html(self, body: str, status=200, location=None):
                data = body.encode()
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802  (the ACS, and the SLO service, HTTP-POST binding)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path.endswith("/slo"):
                    record = {"path": self.path, "valid": False, "binding": "POST"}
                    try:
                        parsed = sp.client.parse_logout_request(
                            form["SAMLRequest"], BINDING_HTTP_POST
                        )
                        record.update(
                            valid=parsed is not None and parsed.message.signature is not None,
                            name_id=parsed.message.name_id.text,
                            session_indexes=[s.text for s in parsed.message.session_index],
                        )
                    except Exception as exc:  # noqa: BLE001
                        record["error"] = repr(exc)
                    sp.logout_requests.append(record)
                    self._html("<!DOCTYPE html><title>SP</title><p>ok</p>")
                    return
                try:
                    response = sp.consume(form["SAMLResponse"], dict(sp.outstanding))
                except Exception as exc:  # noqa: BLE001
                    sp.logins.append({"error": repr(exc)})
                    self._html(
                        "<!DOCTYPE html><html lang='fr'><title>Refus</title><h1>Refusé</h1>", 403
                    )
                    return
                ava = response.get_identity()
                sp.logins.append(
                    {
                        "ava": ava,
                        "name_id": response.assertion.subject.name_id.text,
                        "session_index": response.assertion.authn_statement[0].session_index,
                        "relay_state": form.get("RelayState", ""),
                    }
                )
                name = f"{ava['GARPersonPrenom'][0]} {ava['GARPersonNom'][0]}"
                self._html(
                    f"<!DOCTYPE html><html lang='fr'><title>Ressource</title>"
                    f"<h1>Ressource — {name}</h1></html>"
                )

            def do_GET(self):  # noqa: N802
                parts = urlsplit(self.path)
                if parts.path.endswith("/start"):
                    # The resource opened first: an AuthnRequest through the browser.
                    request_id, info = sp.authn_request(binding=BINDING_HTTP_REDIRECT)
                    sp.outstanding[request_id] = "/"
                    self._html("", 303, dict(info["headers"])["Location"])
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                record = {"path": parts.path, "valid": False}
                if parts.path.endswith("/slo") and "SAMLRequest" in query:
                    try:
                        parsed = sp.client.parse_logout_request(
                            query["SAMLRequest"],
                            BINDING_HTTP_REDIRECT,
                            relay_state=query.get("RelayState"),
                            sigalg=query.get("SigAlg"),
                            signature=query.get("Signature"),
                        )
                        record.update(
                            valid=parsed is not None,
                            name_id=parsed.message.name_id.text,
                            session_indexes=[s.text for s in parsed.message.session_index],
                            sigalg=query.get("SigAlg"),
                        )
                    except Exception as exc:  # noqa: BLE001
                        record["error"] = repr(exc)
                if parts.path.endswith("/slo"):
                    sp.logout_requests.append(record)
                body = b"<!DOCTYPE html><title>SP</title><p>ok</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def form_fields(html: str) -> tuple[str, dict]:
    """(action, {name: value}) of the page's SAML POST form (the portal's is marked, pysaml2's is
    the only one)."""
    forms = re.findall(r"<form\b([^>]*)>(.*?)</form>", html, re.S)
    attrs, body = next(((a, b) for a, b in forms if "data-saml-autosubmit" in a), forms[0])
    action = unescape(re.search(r'action="([^"]*)"', attrs).group(1))
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", body):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and value:
            fields[unescape(name.group(1))] = unescape(value.group(1))
    return action, fields


def decoded(value: str) -> str:
    return base64.b64decode(value).decode()


def sp_metadata(tmp_path: Path, entity_id: str, *, encryption=True) -> str:
    """Metadata of an SP (for registration tests that need no running SP)."""
    key, cert = tmp_path / "md-key.pem", tmp_path / "md-cert.pem"
    generate_pair(key, cert, "metadata SP")
    config = SPConfig()
    config.load(
        {
            "entityid": entity_id,
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "key_file": str(key),
            "cert_file": str(cert),
            **(
                {"encryption_keypairs": [{"key_file": str(key), "cert_file": str(cert)}]}
                if encryption
                else {}
            ),
            "service": {
                "sp": {
                    "endpoints": {
                        "assertion_consumer_service": [
                            (entity_id.rsplit("/", 1)[0] + "/acs", BINDING_HTTP_POST)
                        ],
                    }
                }
            },
        }
    )
    return str(entity_descriptor(config))
