"""The WSGI bridge of `portail serve` (portail/ops/bridge.py), in process with a plain WSGI app:
the body is read on the event loop (a client that trickles it holds no thread), the environ is
PEP 3333's, the answer comes back whole, a client that leaves before its body ends runs nothing."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from portail.ops.bridge import WsgiBridge


class Recorder:
    def __init__(self):
        self.environs = []
        self.threads = set()

    def __call__(self, environ, start_response):
        self.threads.add(threading.get_ident())
        body = environ["wsgi.input"].read()
        self.environs.append({**environ, "body": body})
        # Django writes Set-Cookie values with a leading space (SimpleCookie.output).
        start_response("201 Created", [("Content-Type", "text/plain"), ("Set-Cookie", " a=b")])
        return [b"got ", body]


def scope(method="POST", headers=()):
    return {
        "type": "http",
        "method": method,
        "path": "/chemin/é",
        "root_path": "",
        "query_string": b"x=1",
        "headers": list(headers),
        "client": ("203.0.113.7", 4242),
        "server": ("127.0.0.1", 8000),
        "scheme": "https",
        "http_version": "1.1",
    }


def run(coroutine):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_the_body_is_read_on_the_loop_then_the_app_runs_once_in_a_pool_thread():
    async def main():
        app = Recorder()
        bridge = WsgiBridge(app, threads=2)
        parts = [b"iden", b"tifier=", b"lea"]
        started_before_end = []

        async def receive():
            await asyncio.sleep(0.01)  # a slow client: the app must not have started yet
            started_before_end.append(bool(app.environs))
            chunk = parts.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(parts)}

        sent = []

        async def send(message):
            sent.append(message)

        headers = [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"14"),
            (b"cookie", b"a=1"),
            (b"cookie", b"b=2"),
            (b"x-forwarded-for", b"198.51.100.1"),
        ]
        await bridge(scope(headers=headers), receive, send)
        assert started_before_end == [False, False, False]
        environ = app.environs[0]
        assert environ["body"] == b"identifier=lea"
        assert environ["REQUEST_METHOD"] == "POST" and environ["QUERY_STRING"] == "x=1"
        assert environ["PATH_INFO"] == "/chemin/é".encode().decode("latin1")  # PEP 3333
        assert environ["REMOTE_ADDR"] == "203.0.113.7"
        assert environ["wsgi.url_scheme"] == "https"
        assert environ["CONTENT_LENGTH"] == "14"
        assert environ["HTTP_COOKIE"] == "a=1; b=2"
        assert environ["HTTP_X_FORWARDED_FOR"] == "198.51.100.1"
        assert threading.get_ident() not in app.threads
        assert sent[0]["status"] == 201
        assert (b"set-cookie", b"a=b") in sent[0]["headers"]
        assert sent[1]["body"] == b"got identifier=lea"

    run(main())


def test_a_client_that_leaves_before_its_body_ends_runs_nothing():
    async def main():
        app = Recorder()
        messages = [
            {"type": "http.request", "body": b"x", "more_body": True},
            {"type": "http.disconnect"},
        ]

        async def receive():
            return messages.pop(0)

        sent = []

        async def send(message):
            sent.append(message)

        await WsgiBridge(app, threads=1)(scope(), receive, send)
        assert app.environs == [] and sent == []

    run(main())


def test_a_head_answer_has_its_headers_and_no_body():
    async def main():
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await WsgiBridge(Recorder(), threads=1)(scope("HEAD"), receive, send)
        assert sent[0]["status"] == 201 and sent[1]["body"] == b""

    run(main())
