"""`portail serve` under pressure: a real server (gunicorn + uvicorn + admission control) over HTTP.

One server process (one worker, so one lane and one Django thread) on a SQLite file, production
settings. Argon2 is made slow on purpose (PORTAIL_ARGON2_TIME_COST) so that one login holds the
lane long enough, and the queue deadline is tiny (PORTAIL_EXPENSIVE_QUEUE_MS=1) so that any login
queued behind it is shed: the 503 is provoked by construction, not by a race on timings.
These tests assert behaviour (statuses, headers, pages, the log), never durations.
"""

import http.cookies
import re
import secrets
import socket
import threading
import time
import urllib.parse

import pytest

from tests import servers

SLOW_TIME_COST = "150"  # Argon2id passes over 19 MiB: a login takes a good second on this machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    var = tmp_path_factory.mktemp("serving-var")
    spool = tmp_path_factory.mktemp("serving-tmp")
    (var / "metrics").mkdir()
    port = servers.free_port()
    env = servers.portail_env(
        var,
        PORTAIL_BASE_URL=f"http://127.0.0.1:{port}",  # plain HTTP: no redirect to https
        PORTAIL_MAIL_DELIVER_ON_COMMIT="0",
        PORTAIL_ARGON2_TIME_COST=SLOW_TIME_COST,
        PORTAIL_EXPENSIVE_QUEUE_MS="1",
        PORTAIL_EXPENSIVE_CONCURRENCY="1",  # one place in the lane: the second login queues
        TMPDIR=str(spool),  # where Django would spool a large body
        # serve's metrics files elsewhere: the spool must stay empty (checked below).
        PROMETHEUS_MULTIPROC_DIR=str(var / "metrics"),
    )
    servers.manage(env, "migrate", "--noinput")
    with servers.PortailServer(env, var / "serve.log", port=port, ready="/healthz") as process:
        yield {"port": port, "log": process.log_path, "spool": spool}


def read_response(sock):
    """(status, headers dict with lower-case names, body text) of one HTTP/1.1 response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the headers: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    length = int(headers.get("content-length", ["0"])[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body.decode("utf-8", "replace")


def request(port, method, path, body=b"", headers=None, timeout=60):
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    for name, value in (headers or {}).items():
        head.append(f"{name}: {value}")
    if body or method == "POST":
        head.append(f"Content-Length: {len(body)}")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return read_response(sock)


def login_form(port):
    """A CSRF cookie and token, as a browser has them after showing the login page."""
    status, headers, page = request(port, "GET", "/auth/login")
    assert status == 200
    cookie = http.cookies.SimpleCookie()
    for value in headers.get("set-cookie", []):
        cookie.load(value)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    return {"Cookie": f"csrftoken={cookie['csrftoken'].value}"}, token


def post_login(port, identifier, password, extra=""):
    headers, token = login_form(port)
    body = (
        urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "identifier": identifier, "password": password}
        ).encode()
        + extra.encode()
    )
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return request(port, "POST", "/auth/login", body, headers)


def test_a_login_queued_beyond_the_deadline_gets_503_with_retry_after_and_the_form(server):
    port = server["port"]
    answers = []
    # Two clients post logins at once; one worker means one lane: while one login is computed
    # (slowly), the other waits more than the 1 ms deadline and is shed, uncomputed.
    thread = threading.Thread(
        target=lambda: answers.append(post_login(port, "lea.martin", "secret typé"))
    )
    thread.start()
    while thread.is_alive() and not any(status == 503 for status, _, _ in answers):
        answers.append(post_login(port, "lea.martin", "secret typé"))
    thread.join()
    statuses = [status for status, _, _ in answers]
    assert 200 in statuses  # one was computed: wrong password, the form again
    shed = next(((headers, page) for status, headers, page in answers if status == 503), None)
    assert shed is not None, f"no login was shed while the lane was held: {statuses}"
    headers, page = shed
    assert headers["retry-after"] == ["60"]
    assert "Service momentanément indisponible" in page
    assert "Veuillez réessayer dans une minute." in page
    # The form comes back with the identifier typed, never the password.
    assert 'name="identifier" id="id_identifier" value="lea.martin"' in page
    assert "secret typé" not in page and "secret" not in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_a_page_is_served_while_the_lane_is_held(server):
    port = server["port"]
    thread = threading.Thread(target=post_login, args=(port, "nobody.holds", "mot de passe 2"))
    thread.start()
    try:
        status, _, page = request(port, "GET", "/auth/login")
        assert status == 200 and "Connexion" in page
    finally:
        thread.join()


def test_an_oversized_body_is_refused_from_its_content_length_before_being_sent(server):
    port = server["port"]
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=30) as sock:
        # 200 MB announced, not one byte of it sent: the answer cannot wait for the body.
        sock.sendall(
            f"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {200 * 1024 * 1024}\r\n\r\n".encode()
        )
        status, headers, page = read_response(sock)
    assert status == 413
    assert "Envoi trop volumineux" in page


def test_an_oversized_streamed_body_is_refused_while_streaming_and_never_spooled(server):
    port = server["port"]
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST /auth/help HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"x" * 65536
        status = None
        try:
            # Up to 8 MB (Django would spool beyond 2.5 MB), without the final chunk: only a
            # server that counts while streaming can answer.
            for _ in range(128):
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:  # the server answered and closed: the rest was never read
            pass
        status, _, page = read_response(sock)
    assert status == 413 and "Envoi trop volumineux" in page
    assert sent < 8 * 1024 * 1024 or status == 413
    # Only the metrics directory that `portail serve` prepares for its workers may be there.
    spooled = [p for p in server["spool"].iterdir() if not p.name.startswith("portail-metrics-")]
    assert spooled == []


def test_the_import_path_takes_a_larger_body_only_with_a_session_cookie(server):
    port = server["port"]
    body = b"x" * (1024 * 1024)  # over the small limit, under the import's
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, _ = request(port, "POST", "/console/import", body, headers)
    assert status == 413
    headers["Cookie"] = "portail_session=whatever"
    status, _, _ = request(port, "POST", "/console/import", body, headers)
    assert status != 413  # Django decides (CSRF, login): the size did not stop it


def test_slow_header_connections_do_not_block_a_normal_request(server):
    port = server["port"]
    trickling = []
    try:
        for _ in range(10):  # ten clients that never finish their headers (one worker only)
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(f"GET /auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode())
            trickling.append(sock)
        status, _, page = request(port, "GET", "/auth/login", timeout=20)
        assert status == 200 and "Connexion" in page
    finally:
        for sock in trickling:
            sock.close()


def test_endless_headers_are_cut_off(server):
    port = server["port"]
    answer = None
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(f"GET /auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
            for number in range(4000):  # 4 MB of headers
                sock.sendall(f"X-Big-{number}: {'a' * 1000}\r\n".encode())
            sock.sendall(b"\r\n")
            answer = read_response(sock)[0]
        except OSError:  # cut off: the server closed the connection
            pass
    assert answer is None or answer >= 400


def test_a_request_head_is_bounded_at_16_kib_not_its_body(server):
    # httptools (llhttp) buffers nothing itself: BoundedHttpToolsProtocol keeps h11's bound of
    # before on what a client may send before its headers end (portail.ops.serving).
    port = server["port"]
    start = f"GET /auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # 12 KiB of headers: within the bound, served.
        sock.sendall((start + f"X-Within: {'a' * 12 * 1024}\r\n\r\n").encode())
        assert read_response(sock)[0] == 200
        # Then 20 KiB of a head that does not end (on the same connection): refused, closed.
        sock.sendall((start + "".join(f"X-Big-{n}: {'b' * 1000}\r\n" for n in range(20))).encode())
        status, headers, page = read_response(sock)
        assert status == 431 and headers["connection"] == ["close"]
        assert sock.recv(1024) == b""
    # A body of 100 KiB after a short head is no head: it reaches Django (a form: 403, CSRF).
    body = b"x=" + b"c" * 100 * 1024
    status, _, _ = request(port, "POST", "/auth/help", body, {"Content-Type": "text/plain"})
    assert status not in (400, 413, 431)


def test_a_slow_upload_within_the_limit_completes_while_others_are_served(server):
    port = server["port"]
    headers, token = login_form(port)
    body = (
        urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "identifier": "lent.envoi", "password": "x"}
        )
        + "&padding="
        + "a" * (200 * 1024)  # 200 KB, under the 256 KB limit
    ).encode()
    head = (
        f"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Cookie: {headers['Cookie']}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        step = len(body) // 10
        for start in range(0, len(body), step):
            sock.sendall(body[start : start + step])
            # Meanwhile, another client is served.
            status, _, _ = request(port, "GET", "/auth/login", timeout=20)
            assert status == 200
            time.sleep(0.1)
        status, _, page = read_response(sock)
    assert status == 200 and "Connexion" in page  # the login form, computed: wrong password


def test_the_access_log_holds_no_token(server):
    port = server["port"]
    token = secrets.token_urlsafe(32)
    ticket = "ST-" + secrets.token_hex(16)
    code = secrets.token_urlsafe(20)
    request(port, "GET", f"/auth/reset/{token}")
    request(port, "GET", f"/cas/login?service=https%3A%2F%2Fapp.example&ticket={ticket}")
    request(port, "GET", f"/o/authorize/?client_id=x&code={code}&id_token_hint={code}")
    request(port, "GET", f"/nulle/part/{token}")
    time.sleep(0.5)  # let the worker's log line reach the file
    log = server["log"].read_text()
    assert "/auth/reset/<token>" in log  # the request is logged ...
    assert "/cas/login?service=" in log
    for secret in (token, ticket, code):  # ... with nothing that opens an account
        assert secret not in log


def test_one_request_writes_one_log_line(server):
    """The access line and Django's request line are one JSON line: route, status, request id."""
    import json

    port = server["port"]
    request_id = "perf-" + secrets.token_hex(8)
    status, headers, _ = request(port, "GET", "/auth/login", headers={"X-Request-ID": request_id})
    assert status == 200 and headers["x-request-id"] == [request_id]
    time.sleep(0.5)  # let the worker's log line reach the file
    lines = [line for line in server["log"].read_text().splitlines() if request_id in line]
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["logger"] == "portail.access"
    assert entry["route"] == "accounts:login" and entry["status"] == 200
    assert entry["method"] == "GET" and entry["client_ip"] == "127.0.0.1"
    assert '"GET /auth/login HTTP/1.1" 200' in entry["message"]
    assert isinstance(entry["duration_ms"], float)


@pytest.fixture(scope="module")
def default_lane_server(tmp_path_factory):
    """One worker with the default lane, slow Argon2 and the 1 ms queue deadline."""
    var = tmp_path_factory.mktemp("serving-default-lane")
    port = servers.free_port()
    env = servers.portail_env(
        var,
        PORTAIL_BASE_URL=f"http://127.0.0.1:{port}",
        PORTAIL_MAIL_DELIVER_ON_COMMIT="0",
        PORTAIL_ARGON2_TIME_COST=SLOW_TIME_COST,
        PORTAIL_EXPENSIVE_QUEUE_MS="1",
    )
    servers.manage(env, "migrate", "--noinput")
    with servers.PortailServer(env, var / "serve.log", port=port, ready="/healthz"):
        yield port


def test_one_process_computes_two_logins_at_once_by_default(default_lane_server):
    """Connections may all land on one process (the first awake accepts every waiting one):
    its lane has two places by default, so it keeps two cores hashing. Two logins posted at
    once are both computed; with one place the second would wait past the 1 ms deadline (503,
    as in test_a_login_queued_beyond_the_deadline_gets_503_with_retry_after_and_the_form)."""
    port = default_lane_server
    forms = [login_form(port) for _ in range(2)]
    start = threading.Barrier(2)
    statuses = []

    def post(form):
        headers, token = form
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        body = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "identifier": "lea.martin", "password": "secret"}
        ).encode()
        start.wait()
        statuses.append(request(port, "POST", "/auth/login", body, headers)[0])

    threads = [threading.Thread(target=post, args=(form,)) for form in forms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]  # both computed (wrong password: the form again), none shed
