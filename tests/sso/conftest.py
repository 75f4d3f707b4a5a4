import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from portail.sso.models import Application

CAS_SERVICE = "https://notes.example.test/cas/callback"


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
