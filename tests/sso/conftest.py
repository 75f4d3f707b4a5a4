import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.requests_client import OAuth2Session
from oauth2_provider.models import Application as Client

from portail.sso.models import Application

REDIRECT_URI = "https://rp.example.test/callback"
SCOPE = "openid profile email ent"
CAS_SERVICE = "https://notes.example.test/cas/callback"


def pkce_authorize(browser, client, *, redirect_uri=REDIRECT_URI, scope=SCOPE, **extra):
    """A logged-in test client's GET /o/authorize/ for a code with PKCE S256 (`extra`: more
    parameters, state, nonce, acr_values…): the response and the code verifier."""
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    verifier = secrets.token_urlsafe(48)
    response = browser.get(
        "/o/authorize/",
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
            **extra,
        },
    )
    return response, verifier


def authorized_code(browser, client, scope=SCOPE):
    """A logged-in test client's authorization code (PKCE S256, a nonce) and its verifier."""
    response, verifier = pkce_authorize(browser, client, scope=scope, nonce="n-0S6_WzA2Mj")
    return parse_qs(urlsplit(response["Location"]).query)["code"][0], verifier


@pytest.fixture
def cas_app(db):
    return Application.objects.create(
        name="Vie scolaire",
        short_label="VS",
        description="Notes, absences, cahier de textes",
        url="https://notes.example.test/",
        kind=Application.Kind.CAS,
        cas_service_patterns="https://notes.example.test/\n^https://pronote\\.example\\.test/[0-9]+/eleve\\.html$",
    )


class Recorder:
    """A tiny HTTP server on 127.0.0.1 that records what it receives (an application's backend)."""

    def __init__(self):
        self.requests = []
        self.redirect_to = None
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                recorder.requests.append(
                    {
                        "method": self.command,
                        "path": urlsplit(self.path).path,
                        "query": parse_qs(urlsplit(self.path).query),
                        "form": parse_qs(body),
                    }
                )
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _answer

            def _redirect(self):
                self.send_response(302)
                self.send_header("Location", recorder.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def handle_one_request(self):
                # A receiver told to redirect answers every request with a 302 to that place.
                if recorder.redirect_to:
                    self.do_GET = self.do_POST = self._redirect
                return super().handle_one_request()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder(settings):
    # The receiver listens on 127.0.0.1: the outbound guard lets loopback through for tests only.
    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = True
    with Recorder() as server:
        yield server


@pytest.fixture
def rp_secret():
    return secrets.token_urlsafe(32)


@pytest.fixture
def oidc_client(db, rp_secret):
    client = Client.objects.create(
        name="Moodle",
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT_URI,
        post_logout_redirect_uris="https://rp.example.test/bye",
        client_secret=rp_secret,
        algorithm=Client.RS256_ALGORITHM,
        skip_authorization=True,
    )
    Application.objects.create(
        name="Moodle",
        short_label="MO",
        url="https://rp.example.test/",
        kind=Application.Kind.OIDC,
        oidc_client=client,
        released_attributes=["identifier", "displayName", "entProfile", "uai", "email"],
    )
    return client


@pytest.fixture
def rp(oidc_client, rp_secret):
    return OAuth2Session(
        oidc_client.client_id,
        rp_secret,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )


@pytest.fixture
def logged_in(client, active_user):
    client.force_login(active_user)
    return client
