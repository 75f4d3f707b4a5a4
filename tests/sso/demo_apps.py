"""Two small applications, as a school's vendors would write them, for the browser test.

"Vie scolaire" speaks CAS 3.0 through python-cas (with single logout); "Moodle" speaks OpenID
Connect through Authlib's client (code + PKCE, userinfo, back-channel logout verified with the
JWKS). Each keeps its own session cookie on 127.0.0.1 and shows who is signed in.
"""

import secrets
import threading
from html import escape
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from cas import CASClient
from joserfc import jwt
from joserfc.jwk import KeySet


class DemoApps:
    def __init__(self, portal_url: str):
        self.portal = portal_url
        self.sessions = {}  # cookie -> display name
        self.cas_tickets = {}  # CAS ticket -> cookie (for single logout)
        self.oidc_subjects = {}  # sub -> cookie (for back-channel logout)
        self.pending = {}  # OAuth state -> code verifier
        self.logouts = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.oidc_client_id = self.oidc_secret = None
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # --- Vie scolaire (CAS) -----------------------------------------------------------------

    def cas(self):
        return CASClient(
            version=3, service_url=self.url + "/vie-scolaire/", server_url=self.portal + "/cas/"
        )

    def vie_scolaire(self, handler, query, cookie):
        if cookie in self.sessions:
            return handler.page(f"Vie scolaire — {self.sessions[cookie]}")
        if "ticket" not in query:
            return handler.redirect(self.cas().get_login_url())
        ticket = query["ticket"][0]
        user, attributes, _ = self.cas().verify_ticket(ticket)
        if not user:
            return handler.page("Vie scolaire — ticket refusé", 403)
        cookie = secrets.token_hex(8)
        self.sessions[cookie] = attributes["displayName"]
        self.cas_tickets[ticket] = cookie
        return handler.redirect(self.url + "/vie-scolaire/", cookie=("vs", cookie))

    def vie_scolaire_logout(self, form):
        request = form.get("logoutRequest", [""])[0]
        for ticket, cookie in list(self.cas_tickets.items()):
            if self.cas().verify_logout_request(request, ticket):
                self.sessions.pop(cookie, None)
                self.logouts.append("vie-scolaire")

    # --- Moodle (OpenID Connect) ------------------------------------------------------------

    def rp(self, **kwargs):
        return OAuth2Session(
            self.oidc_client_id,
            self.oidc_secret,
            scope="openid profile ent",
            redirect_uri=self.url + "/moodle/callback",
            code_challenge_method="S256",
            **kwargs,
        )

    def moodle(self, handler, query, cookie):
        if cookie in self.sessions:
            return handler.page(f"Moodle — {self.sessions[cookie]}")
        verifier = secrets.token_urlsafe(48)
        url, state = self.rp().create_authorization_url(
            self.portal + "/o/authorize/", code_verifier=verifier, nonce=secrets.token_hex(8)
        )
        self.pending[state] = verifier
        return handler.redirect(url)

    def moodle_callback(self, handler, path_and_query, query):
        state = query["state"][0]
        rp = self.rp(state=state)
        rp.fetch_token(
            self.portal + "/o/token/",
            authorization_response=self.url + path_and_query,
            code_verifier=self.pending.pop(state),
        )
        info = rp.get(self.portal + "/o/userinfo/").json()
        cookie = secrets.token_hex(8)
        self.sessions[cookie] = info["displayName"]
        self.oidc_subjects[info["sub"]] = cookie
        return handler.redirect(self.url + "/moodle/", cookie=("mo", cookie))

    def moodle_backchannel(self, form):
        jwks = requests.get(self.portal + "/o/.well-known/jwks.json", timeout=5).json()
        token = jwt.decode(form["logout_token"][0], KeySet.import_key_set(jwks))
        if token.claims.get("aud") == self.oidc_client_id:
            self.sessions.pop(self.oidc_subjects.pop(token.claims["sub"], None), None)
            self.logouts.append("moodle")

    # --- HTTP plumbing ----------------------------------------------------------------------

    def _handler(apps):  # noqa: N805  (the closure's owner, not a handler)
        class Handler(BaseHTTPRequestHandler):
            def page(self, text, status=200):
                body = f'<!DOCTYPE html><html lang="fr"><body><h1>{escape(text)}</h1></body></html>'
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def redirect(self, location, cookie=None):
                self.send_response(302)
                self.send_header("Location", location)
                if cookie:
                    self.send_header("Set-Cookie", f"{cookie[0]}={cookie[1]}; Path=/; HttpOnly")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def cookie(self, name):
                jar = SimpleCookie(self.headers.get("Cookie", ""))
                return jar[name].value if name in jar else None

            def do_GET(self):
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if parts.path == "/vie-scolaire/":
                    return apps.vie_scolaire(self, query, self.cookie("vs"))
                if parts.path == "/moodle/":
                    return apps.moodle(self, query, self.cookie("mo"))
                if parts.path == "/moodle/callback":
                    return apps.moodle_callback(self, self.path, query)
                return self.page("Introuvable", 404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                path = urlsplit(self.path).path
                if path == "/vie-scolaire/":
                    apps.vie_scolaire_logout(form)
                elif path == "/moodle/backchannel":
                    apps.moodle_backchannel(form)
                self.page("ok")

            def log_message(self, *args):
                pass

        return Handler
