"""The two demo applications as WSGI callables (see the package docstring)."""

import secrets
import threading
from html import escape
from http.cookies import SimpleCookie
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from authlib.integrations.requests_client import OAuth2Session
from cas import CASClient
from joserfc import jwt
from joserfc.jwk import KeySet

TIMEOUT = 5  # seconds: every call to the portal is bounded

_PAGE = """<!DOCTYPE html>
<html lang="fr">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; color: #1e1e1e; background: #f6f6f6; }}
header {{ background: {colour}; color: #fff; padding: 1rem; }}
header p {{ margin: 0; font-weight: 700; }}
main {{ max-width: 46rem; margin: 0 auto; padding: 1rem; }}
table {{ border-collapse: collapse; width: 100%; background: #fff; }}
th, td {{ text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd;
  overflow-wrap: anywhere; vertical-align: top; }}
a {{ color: #00458b; }}
a:focus-visible {{ outline: 3px solid #1e1e1e; outline-offset: 2px; }}
</style></head>
<body><header><p>{app} — application de démonstration</p></header>
<main>{body}</main></body></html>"""


class Demo:
    """What both applications share: a cookie session in memory, pages, redirects."""

    name = ""
    colour = "#00458b"
    cookie_name = ""

    def __init__(self, portal_url: str, own_url: str):
        self.portal = portal_url.rstrip("/")
        self.url = own_url.rstrip("/")
        self.sessions = {}  # cookie value -> {"name": ..., "claims": {...}}
        self.lock = threading.Lock()

    def session_of(self, environ):
        jar = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        value = jar[self.cookie_name].value if self.cookie_name in jar else None
        with self.lock:
            return self.sessions.get(value)

    def open_session(self, name, claims):
        value = secrets.token_urlsafe(24)
        with self.lock:
            self.sessions[value] = {"name": name, "claims": claims}
        return f"{self.cookie_name}={value}; Path=/; HttpOnly; SameSite=Lax"

    def page(self, start_response, title, body, status="200 OK"):
        html = _PAGE.format(
            title=escape(title), app=escape(self.name), colour=self.colour, body=body
        )
        data = html.encode()
        start_response(
            status,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(data))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [data]

    def redirect(self, start_response, location, cookie=None):
        headers = [("Location", location), ("Content-Length", "0"), ("Cache-Control", "no-store")]
        if cookie:
            headers.append(("Set-Cookie", cookie))
        start_response("302 Found", headers)
        return [b""]

    def signed_in(self, start_response, session, what):
        rows = "".join(
            f"<tr><th scope='row'>{escape(str(k))}</th><td>{escape(_text(v))}</td></tr>"
            for k, v in session["claims"].items()
        )
        body = (
            f"<h1>Bonjour {escape(session['name'])}</h1>"
            f"<p>Vous êtes connecté à {escape(self.name)} par le portail ENT, sans avoir saisi de "
            f"nouveau mot de passe. Voici {what}&#8239;:</p>"
            f"<table><tbody>{rows}</tbody></table>"
            f'<p><a href="{escape(self.portal)}/">Retour au portail ENT</a></p>'
        )
        return self.page(start_response, f"Bonjour {session['name']} — {self.name}", body)

    def not_found(self, start_response):
        return self.page(
            start_response, "Page introuvable", "<h1>Page introuvable</h1>", "404 Not Found"
        )


def _text(value):
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


class CasDemo(Demo):
    """« Cahier de textes »: CAS 3.0 through python-cas."""

    name = "Cahier de textes"
    colour = "#6a3d9a"
    cookie_name = "demo_cas"

    def __init__(self, portal_url, own_url):
        super().__init__(portal_url, own_url)
        self.tickets = {}  # service ticket -> cookie value, for single logout

    def client(self):
        return CASClient(
            version=3,
            service_url=self.url + "/",
            server_url=self.portal + "/cas/",
            verify_ssl_certificate=True,
        )

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO", "/"), environ["REQUEST_METHOD"]
        if path != "/":
            return self.not_found(start_response)
        if method == "POST":  # CAS 3.0 §2.3.3: the portal's single logout request
            return self.single_logout(environ, start_response)
        session = self.session_of(environ)
        if session:
            return self.signed_in(start_response, session, "les attributs CAS reçus")
        ticket = parse_qs(environ.get("QUERY_STRING", "")).get("ticket", [""])[0]
        if not ticket:
            return self.redirect(start_response, self.client().get_login_url())
        # serviceValidate over HTTP (python-cas calls /cas/p3/serviceValidate with requests).
        user, attributes, _ = self.client().verify_ticket(ticket)
        if not user:
            body = "<h1>Connexion refusée</h1><p>Le portail n’a pas validé le ticket.</p>"
            return self.page(start_response, "Connexion refusée", body, "403 Forbidden")
        attributes = {"cas:user": user, **(attributes or {})}
        name = _text(attributes.get("displayName") or user)
        cookie = self.open_session(name, attributes)
        with self.lock:
            self.tickets[ticket] = cookie.split(";")[0].split("=", 1)[1]
        return self.redirect(start_response, self.url + "/", cookie)

    def single_logout(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(length).decode())
        request = form.get("logoutRequest", [""])[0]
        with self.lock:
            for ticket, value in list(self.tickets.items()):
                if ticket in request and self.client().verify_logout_request(request, ticket):
                    self.sessions.pop(value, None)
                    del self.tickets[ticket]
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]


class OidcDemo(Demo):
    """« Classeur »: OpenID Connect, authorization code with PKCE (S256), public client."""

    name = "Classeur"
    colour = "#1b7340"
    cookie_name = "demo_oidc"

    def __init__(self, portal_url, own_url, client_id):
        super().__init__(portal_url, own_url)
        self.client_id = client_id
        self.pending = {}  # state -> (code verifier, nonce)
        self._configuration = None

    def configuration(self):
        if self._configuration is None:
            url = self.portal + "/o/.well-known/openid-configuration"
            self._configuration = requests.get(url, timeout=TIMEOUT).json()
        return self._configuration

    def rp(self, **kwargs):
        return OAuth2Session(
            self.client_id,
            scope="openid profile ent",
            redirect_uri=self.url + "/callback",
            code_challenge_method="S256",
            token_endpoint_auth_method="none",  # a public client: PKCE is its proof
            timeout=TIMEOUT,
            **kwargs,
        )

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/callback":
            return self.callback(environ, start_response)
        if path != "/":
            return self.not_found(start_response)
        session = self.session_of(environ)
        if session:
            return self.signed_in(
                start_response, session, "les informations (claims) du jeton d’identité vérifié"
            )
        verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        url, state = self.rp().create_authorization_url(
            self.configuration()["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        with self.lock:
            self.pending[state] = (verifier, nonce)
        return self.redirect(start_response, url)

    def callback(self, environ, start_response):
        query = parse_qs(environ.get("QUERY_STRING", ""))
        state = query.get("state", [""])[0]
        with self.lock:
            verifier, nonce = self.pending.pop(state, (None, None))
        if verifier is None or "code" not in query:
            body = "<h1>Connexion refusée</h1><p>Réponse inattendue du portail.</p>"
            return self.page(start_response, "Connexion refusée", body, "400 Bad Request")
        config = self.configuration()
        token = self.rp(state=state).fetch_token(
            config["token_endpoint"],
            authorization_response=self.url + "/callback?" + urlencode(query, doseq=True),
            code_verifier=verifier,
        )
        claims = self.verified_id_token(token["id_token"], nonce)
        name = claims.get("name") or claims.get("displayName") or claims["sub"]
        return self.redirect(start_response, self.url + "/", self.open_session(name, claims))

    def verified_id_token(self, id_token: str, nonce: str) -> dict:
        """OIDC Core §3.1.3.7: signature (RS256, the portal's JWKS), iss, aud, exp, nonce."""
        config = self.configuration()
        keys = KeySet.import_key_set(requests.get(config["jwks_uri"], timeout=TIMEOUT).json())
        token = jwt.decode(id_token, keys, algorithms=["RS256"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": config["issuer"]},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
        return dict(token.claims)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve(app, host: str, port: int):
    """Start `app` on host:port in a daemon thread; return the server (shutdown() stops it)."""
    server = make_server(
        host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
