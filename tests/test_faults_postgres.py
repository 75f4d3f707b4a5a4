"""PostgreSQL unreachable behind a network black hole: a 503 page within 5 s, never a reset
connection, and recovery without a restart (issue 8 §2).

A TCP forwarder of the test's own stands between a real `portail serve` and PostgreSQL. Paused, it
keeps every socket open and forwards nothing: the portal's connection stays established and
acknowledged, but no answer ever comes (what a hung server, pooler or a half-dead route does).
"""

import contextlib
import select
import socket
import threading
import time

import pytest

from tests import servers
from tests.servers import POSTGRES_URL
from tests.test_faults_redis import create_user, logged_in, serve_env, within

# Issue 8 §2: « service momentanément indisponible » with 503 within 5 s.
ANSWER_WITHIN_SECONDS = 5


class BlackHoleProxy:
    """127.0.0.1:<port> → PostgreSQL; `pause()` stops forwarding (sockets stay open)."""

    def __init__(self, upstream_port=5432):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.closed = False
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def pause(self):
        self.forwarding.clear()

    def resume(self):
        self.forwarding.set()

    def close(self):
        self.closed = True
        self.listener.close()
        for sock in self.sockets:
            sock.close()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source, target):
        try:
            while not self.closed:
                if not self.forwarding.is_set():
                    time.sleep(0.05)  # held: nothing read, nothing sent, nothing closed
                    continue
                readable, _, _ = select.select([source], [], [], 0.1)
                if not readable or not self.forwarding.is_set():
                    continue  # paused while waiting: the bytes stay where they are
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def database():
    servers.require("postgres")
    with servers.postgres_database("portail_faults") as name:
        yield name


def upstream_port():
    from urllib.parse import urlsplit

    return urlsplit(POSTGRES_URL).port or 5432


@pytest.mark.postgres
def test_black_holed_database_gives_the_503_page_then_heals(tmp_path, database):
    direct = serve_env(tmp_path, DATABASE_URL=f"{POSTGRES_URL}/{database}")
    servers.manage(direct, "migrate", "--noinput")
    create_user(direct, "prod.faults")

    proxy = BlackHoleProxy(upstream_port())
    env = {**direct, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{proxy.port}/{database}"}
    server = servers.PortailServer(env, tmp_path / "serve.log").start()
    try:
        node, _, _ = logged_in(server)
        assert node.request("/").status == 200

        proxy.pause()
        seen = []
        for path in ("/", "/", "/auth/login", "/"):
            # A reset connection or no answer within 5 s raises here and fails the test.
            response, seconds = within(ANSWER_WITHIN_SECONDS, node.request, path)
            seen.append((path, response.status, round(seconds * 1000)))
            if path == "/auth/login" and response.status == 200:
                continue  # the login form itself needs no database: it may still be served
            assert response.status == 503, (path, response.text[:300])
            assert response.headers["Retry-After"] == "60"
            assert "Service momentanément indisponible" in response.text
        ready, _ = within(ANSWER_WITHIN_SECONDS, node.request, "/health/ready")
        assert ready.status == 503 and '"database": {"ok": false' in ready.text
        live, _ = within(ANSWER_WITHIN_SECONDS, node.request, "/health/live")
        assert live.status == 200
        print("black hole (path, status, ms):", seen, "(shared load)")

        proxy.resume()
        deadline = time.monotonic() + 20
        while True:  # the connect breaker may answer 503 for its last 2 s
            page, _ = within(ANSWER_WITHIN_SECONDS, node.request, "/")
            if page.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert page.status == 200 and "Prod Faults" in page.text  # same session, no restart
        assert node.request("/health/ready").status == 200
    finally:
        server.stop()
        proxy.close()
        log = (tmp_path / "serve.log").read_text()
        print(log[-4000:])
    assert "WORKER TIMEOUT" not in log  # gunicorn never had to kill a stuck worker


@pytest.mark.parametrize(
    ("argv", "statement_timeout", "wait"),
    [(["portail", "serve"], "5000", "6.0"), (["portail", "import-users"], "0", "None")],
)
def test_statement_timeout_bounds_the_web_server_not_batch_commands(argv, statement_timeout, wait):
    code = (
        f"import sys; sys.argv = {argv!r}; import portail.settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['OPTIONS']['options'], "
        "s.DATABASES['default']['OPTIONS']['connect_timeout'], s.PORTAIL_DB_WAIT_SECONDS)"
    )
    out = servers.python_output(
        code, PORTAIL_DEBUG="1", DATABASE_URL="postgres://postgres@127.0.0.1:5432/portail"
    ).split()
    assert out == [
        "portail.ops.postgresql",
        "-c",
        f"statement_timeout={statement_timeout}",
        "2",
        wait,
    ]
