"""Admission control as an ASGI layer, in process: the lane's order, the client that leaves while
queued, the redacted paths. The application behind it is a plain ASGI app that records its calls."""

import asyncio
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

from portail.ops.admission import Admission, Lane, redact_path


def settings(**overrides):
    values = dict(
        PORTAIL_MAX_BODY_BYTES=1000,
        PORTAIL_MAX_UPLOAD_BYTES=10_000,
        PORTAIL_UPLOAD_PATHS=["/console/import"],
        PORTAIL_EXPENSIVE_PATHS=["/auth/login"],
        PORTAIL_EXPENSIVE_CONCURRENCY=1,
        PORTAIL_EXPENSIVE_QUEUE_MS=10_000,
        PORTAIL_EXPENSIVE_QUEUE_MAX=10,
        PORTAIL_RETRY_AFTER_SECONDS=60,
        SESSION_COOKIE_NAME="portail_session",
    )
    values.update(overrides)
    return types.SimpleNamespace(**values)


class Downstream:
    """Django's place: answers 200 once `release` is set, and records what it was given."""

    def __init__(self):
        self.calls = []
        self.release = asyncio.Event()

    async def __call__(self, scope, receive, send):
        message = await receive()
        self.calls.append((scope["path"], message.get("body")))
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Client:
    """One connection: sends `body`, then, if told to, leaves (http.disconnect)."""

    def __init__(self, body=b"identifier=a&password=b"):
        self.body = body
        self.sent = []
        self.leave = asyncio.Event()
        self.given = False

    async def receive(self):
        if not self.given:
            self.given = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message):
        self.sent.append(message)

    @property
    def status(self):
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        return starts[0]["status"] if starts else None


def scope(path="/auth/login", method="POST", headers=()):
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": list(headers),
        "client": ("127.0.0.1", 1),
        "http_version": "1.1",
    }


def run(coroutine):
    # In a thread of its own: the session-wide browser of the e2e tests (Playwright's sync API)
    # keeps an event loop running in the main thread, where asyncio.run() refuses to start.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_lane_serves_waiters_in_order_and_counts_places():
    async def main():
        lane = Lane(concurrency=1, queue_max=5)
        order = []
        assert await lane.acquire(1) == "ok"

        async def waiter(name):
            assert await lane.acquire(5) == "ok"
            order.append(name)
            lane.release()

        tasks = [asyncio.create_task(waiter(n)) for n in "abc"]
        await asyncio.sleep(0)
        assert len(lane.waiters) == 3
        lane.release()
        await asyncio.gather(*tasks)
        assert order == ["a", "b", "c"]
        assert lane.free == 1 and not lane.waiters

    run(main())


def test_lane_refuses_beyond_its_queue_and_after_the_deadline():
    async def main():
        lane = Lane(concurrency=1, queue_max=1)
        assert await lane.acquire(1) == "ok"
        queued = asyncio.create_task(lane.acquire(0.01))
        await asyncio.sleep(0)
        assert await lane.acquire(1) == "full"
        assert await queued == "timeout"
        lane.release()
        assert lane.free == 1 and not lane.waiters

    run(main())


def test_lane_refuses_at_once_what_would_wait_past_the_deadline():
    async def main():
        lane = Lane(concurrency=1, queue_max=100)
        lane.record_hold(0.5)  # a place is held half a second on average
        assert await lane.acquire(1) == "ok"
        queued = [asyncio.create_task(lane.acquire(10)) for _ in range(3)]
        await asyncio.sleep(0)
        # Three ahead and itself, 0.5 s each: 2 s expected, over twice a 0.9 s deadline: refused.
        assert await lane.acquire(0.9) == "late"
        assert len(lane.waiters) == 3
        # With a 5 s deadline the same wait is worth queueing for.
        queued.append(asyncio.create_task(lane.acquire(5)))
        await asyncio.sleep(0)
        assert len(lane.waiters) == 4
        for task in queued:
            task.cancel()
        await asyncio.gather(*queued, return_exceptions=True)

    run(main())


def test_a_login_whose_client_left_while_queued_is_never_computed():
    async def main():
        app = Downstream()
        admission = Admission(app, settings=settings())
        first, second = Client(b"first"), Client(b"second")
        running = asyncio.create_task(admission(scope(), first.receive, first.send))
        await asyncio.sleep(0.01)
        waiting = asyncio.create_task(admission(scope(), second.receive, second.send))
        await asyncio.sleep(0.01)
        second.leave.set()  # gone while its login waits for the lane
        await waiting
        app.release.set()
        await running
        assert app.calls == [("/auth/login", b"first")]
        assert second.sent == []  # nobody to answer
        assert first.status == 200
        assert admission.lane.free == 1

    run(main())


def test_a_login_queued_past_the_deadline_gets_503_and_the_page():
    async def main():
        app = Downstream()
        admission = Admission(app, settings=settings(PORTAIL_EXPENSIVE_QUEUE_MS=20))
        first = Client()
        second = Client(b"identifier=l%C3%A9a.martin&password=secret&csrfmiddlewaretoken=abc")
        running = asyncio.create_task(admission(scope(), first.receive, first.send))
        await asyncio.sleep(0.01)
        await admission(scope(), second.receive, second.send)
        app.release.set()
        await running
        assert second.status == 503
        headers = dict(second.sent[0]["headers"])
        assert headers[b"retry-after"] == b"60"
        assert headers[b"x-frame-options"] == b"DENY"
        assert b"form-action 'self'" in headers[b"content-security-policy"]
        page = second.sent[1]["body"].decode()
        assert "réessayer dans une minute" in page
        assert 'value="léa.martin"' in page and "secret" not in page
        assert len(app.calls) == 1

    run(main())


def test_pages_do_not_wait_for_the_lane():
    async def main():
        app = Downstream()
        app.release.set()
        admission = Admission(app, settings=settings())
        await admission.lane.acquire(1)  # the lane is full
        page = Client(b"")
        await asyncio.wait_for(
            admission(scope("/auth/login", "GET"), page.receive, page.send), timeout=5
        )
        assert page.status == 200

    run(main())


def test_a_larger_body_only_on_the_import_path_with_a_session_cookie():
    async def main():
        app = Downstream()
        app.release.set()
        admission = Admission(app, settings=settings())
        big = [(b"content-length", b"5000")]
        for path, headers, expected in [
            ("/auth/help", big, 413),
            ("/console/import", big, 413),
            ("/console/import", [*big, (b"cookie", b"portail_session=x")], 200),
            ("/auth/help", [(b"content-length", b"nan")], 413),
        ]:
            client = Client(b"x" * 5000)
            await admission(scope(path, "POST", headers), client.receive, client.send)
            assert client.status == expected, (path, headers)
        assert len(app.calls) == 1

    run(main())


@pytest.mark.parametrize(
    "path,query,logged",
    [
        ("/auth/reset/AbCdEf0123456789xyz", "", "/auth/reset/<token>"),
        ("/cas/serviceValidate", "service=https://a.fr/&ticket=ST-1-abc", None),
        ("/console/comptes/42/", "", "/console/comptes/42/"),
        ("/nulle/part/AbCdEf0123456789xyzAbCdEf", "", "/nulle/part/…"),
        ("/o/authorize/", "code=abc&id_token_hint=eyJ&state=s", None),
    ],
)
def test_logged_paths_hold_no_secret(path, query, logged):
    result = redact_path(path, query)
    if logged is not None:
        assert result == logged
    for secret in ("AbCdEf0123456789xyz", "ST-1-abc", "eyJ", "code=abc", "state=s"):
        assert secret not in result
    if query:
        assert "…" in result


@pytest.mark.django_db
def test_a_remembered_plain_path_still_redacts_its_query_and_capturing_paths_are_not_kept():
    from portail.ops import routes

    for _ in range(2):  # the second call takes the remembered path
        assert redact_path("/cas/serviceValidate", "ticket=ST-1-abc&service=x") == (
            "/cas/serviceValidate?ticket=…&service=x"
        )
    assert "/cas/serviceValidate" in routes._kept[1]
    for _ in range(2):
        assert redact_path("/auth/reset/AbCdEf0123456789xyz") == "/auth/reset/<token>"
    assert "/auth/reset/AbCdEf0123456789xyz" not in routes._kept[1]
    assert routes.plain_match("/auth/reset/AbCdEf0123456789xyz") is None
    assert routes.plain_match("/no/such/page") is None
