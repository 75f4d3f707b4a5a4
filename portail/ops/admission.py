"""Admission control in front of Django (ASGI): what a request may cost is decided before Django sees it.

Three rules, in this order, each answered without touching the database or computing a hash:

1. Size. A body larger than the limit is refused with 413 from its Content-Length, or as soon as
   the streamed bytes pass the limit, before Django reads it (so nothing is spooled to disk) and
   before any authentication work. One small limit for everything; a larger one only for the
   console's import upload, and only when a session cookie comes with it.
2. Expensive requests (POSTs to the login, activation, recovery and token endpoints: the Argon2
   ones) go through a per-process lane: a bounded number run at once, the others wait in a FIFO
   queue. One that has waited longer than the queue deadline is answered 503 with Retry-After and a
   short French page, without computing anything (a login keeps the identifier typed); one whose
   client left while it waited (ASGI `http.disconnect`) is dropped.
3. Everything else (pages, static files, logged-in pages) goes straight to Django and never waits
   behind the lane's queue.

It also writes the access log, with no secret in it: paths are logged with the URL's captured values
replaced by their names (`/auth/reset/<token>`), and query values that may carry a token, ticket or
code are redacted.
"""

import asyncio
import collections
import contextlib
import html
import logging
import re
import time
from pathlib import Path
from urllib.parse import parse_qsl, quote

from prometheus_client import Counter, Histogram

access_log = logging.getLogger("portail.access")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "errors"

SHED = Counter(
    "portail_requests_shed_total",
    "Requests refused by admission control before any work, by reason",
    ["reason"],
)
QUEUE_SECONDS = Histogram(
    "portail_expensive_queue_seconds",
    "Time an expensive request (login, activation, recovery, token) waited for its lane",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)

# Query parameters whose value may open an account or a session: CAS tickets, OAuth/OIDC codes and
# tokens (RFC 6749 §10.3/§10.5 forbid logging them), reset and activation codes.
SECRET_PARAMETER = re.compile(
    r"ticket|code|token|hint|password|secret|state|nonce|key|session|verifier|assertion|saml|otp",
    re.IGNORECASE,
)
# In a path that matched no route, a segment that looks like a token is redacted all the same.
TOKEN_LIKE = re.compile(r"^[A-Za-z0-9_\-.:=~%]{16,}$")


class Lane:
    """At most `concurrency` holders at once; the others wait in FIFO order, `queue_max` at most.

    A request that would certainly wait past the deadline (the waiters ahead of it times the
    average time a place is held, over the concurrency) is refused at once ('late'): its client
    gets the 503 in milliseconds instead of after the deadline.
    """

    def __init__(self, concurrency: int, queue_max: int):
        self.concurrency = concurrency
        self.free = concurrency
        self.queue_max = queue_max
        self.waiters: collections.deque[asyncio.Future] = collections.deque()
        self.hold_seconds = 0.0  # moving average of how long a place is held

    def expected_wait(self) -> float:
        return (len(self.waiters) + 1) * self.hold_seconds / self.concurrency

    def record_hold(self, seconds: float) -> None:
        self.hold_seconds = (
            seconds if not self.hold_seconds else 0.8 * self.hold_seconds + 0.2 * seconds
        )

    def try_acquire(self, timeout: float) -> str | None:
        """Without waiting: 'ok' (a place is held), 'full' or 'late' (refused), or None (the
        request must queue: acquire())."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return "ok"
        if len(self.waiters) >= self.queue_max:
            return "full"
        if self.expected_wait() > 2 * timeout:  # twice: the average is only an estimate
            return "late"
        return None

    async def acquire(self, timeout: float) -> str:
        """'ok' when a place is held (release() it), else 'full', 'late' or 'timeout'."""
        verdict = self.try_acquire(timeout)
        if verdict is not None:
            return verdict
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
            return "ok"
        except TimeoutError:
            if waiter.done():  # handed a place just as the deadline struck: give it back
                self.release()
            else:
                waiter.cancel()
            return "timeout"
        except asyncio.CancelledError:  # the client left while queued
            if waiter.done() and not waiter.cancelled():
                self.release()
            else:
                waiter.cancel()
            raise
        finally:
            if waiter in self.waiters:
                self.waiters.remove(waiter)

    def release(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the place passes straight to the next in line
                return
        self.free += 1


class TooLarge(Exception):
    pass


class Disconnected(Exception):
    pass


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def redact_path(path: str, query: str = "") -> str:
    """The path as it may be logged: captured URL values and secret query values replaced.

    A path whose route captures nothing logs as it is; its match is kept (ops.routes: every
    request's log line resolved its path again, ~25 µs of the ~75 µs a refused login costs in
    admission control, bench/README.md « Login CPU »)."""
    logged = path
    try:
        from . import routes

        match = routes.match(path)
        if match is not None and not match.args and not match.kwargs:
            return logged + (_redact_query(query) if query else "")
        if match is not None:
            for name, value in match.kwargs.items():
                if isinstance(value, str) and value:
                    logged = logged.replace(value, f"<{name}>")
            for value in match.args:
                if isinstance(value, str) and value:
                    logged = logged.replace(value, "<…>")
        else:
            logged = "/".join(
                "…" if TOKEN_LIKE.match(segment) else segment for segment in path.split("/")
            )
    except Exception:  # noqa: BLE001 (a log line must never break a request)
        logged = "/".join("…" for _ in path.split("/"))
    return logged + (_redact_query(query) if query else "")


def _redact_query(query: str) -> str:
    try:
        pairs = parse_qsl(query, keep_blank_values=True)
        return "?" + "&".join(
            quote(k, safe="") + "=" + ("…" if SECRET_PARAMETER.search(k) else quote(v, safe=""))
            for k, v in pairs
        )
    except ValueError:
        return "?…"


class RedactPaths(logging.Filter):
    """Django logs every 4xx/5xx as « Not Found: /path »: the path goes through redact_path too."""

    def filter(self, record):
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_path(arg) if isinstance(arg, str) and arg.startswith("/") else arg
                for arg in record.args
            )
        return True


class Admission:
    """The ASGI application `portail serve` runs: Django behind size limits and the expensive lane."""

    def __init__(self, app, *, settings=None):
        if settings is None:
            from django.conf import settings
        self.app = app
        self.max_body = settings.PORTAIL_MAX_BODY_BYTES
        self.max_upload = settings.PORTAIL_MAX_UPLOAD_BYTES
        self.upload_paths = tuple(settings.PORTAIL_UPLOAD_PATHS)
        self.expensive_paths = tuple(settings.PORTAIL_EXPENSIVE_PATHS)
        self.queue_seconds = settings.PORTAIL_EXPENSIVE_QUEUE_MS / 1000
        self.retry_after = str(settings.PORTAIL_RETRY_AFTER_SECONDS)
        self.session_cookie = settings.SESSION_COOKIE_NAME.encode()
        self.lane = Lane(
            settings.PORTAIL_EXPENSIVE_CONCURRENCY, settings.PORTAIL_EXPENSIVE_QUEUE_MAX
        )
        self.page_413 = (TEMPLATES / "413.html").read_text()
        self.page_503 = (TEMPLATES / "503.html").read_text()
        request_log = logging.getLogger("django.request")
        if not any(isinstance(f, RedactPaths) for f in request_log.filters):
            request_log.addFilter(RedactPaths())

    # --- classification -------------------------------------------------------------------------

    def body_limit(self, scope) -> int:
        if scope["path"].startswith(self.upload_paths):
            cookies = _header(scope, b"cookie") or ""
            if self.session_cookie.decode() + "=" in cookies:
                return self.max_upload
        return self.max_body

    def is_expensive(self, scope) -> bool:
        return scope["method"] == "POST" and scope["path"].startswith(self.expensive_paths)

    # --- the application ------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        outcome = {"status": 0, "bytes": 0}

        async def logged_send(message):
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
            elif message["type"] == "http.response.body":
                outcome["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.admit(scope, receive, logged_send)
        finally:
            self.log(scope, outcome, started)

    async def admit(self, scope, receive, send):
        limit = self.body_limit(scope)
        length = _header(scope, b"content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > limit):
            SHED.labels("too_large").inc()
            await self.answer(send, 413, self.page_413)
            return
        if not self.is_expensive(scope):
            await self.app(scope, self.limited(receive, send, limit), send)
            return

        # An expensive request's body is small: read it whole first, then wait for a place while
        # listening for the client leaving.
        try:
            body = await self.read_body(receive, limit)
        except TooLarge:
            SHED.labels("too_large").inc()
            await self.answer(send, 413, self.page_413)
            return
        except Disconnected:
            SHED.labels("client_left").inc()
            return
        queued = time.monotonic()
        # A free place or a certain refusal is decided at once, without a task: under a surge
        # most logins are refused here, and each costs what the refusal costs (bench/overload.py).
        verdict = self.lane.try_acquire(self.queue_seconds)
        if verdict is None:
            acquiring = asyncio.ensure_future(self.lane.acquire(self.queue_seconds))
            watching = asyncio.ensure_future(receive())
            done, _ = await asyncio.wait({acquiring, watching}, return_when=asyncio.FIRST_COMPLETED)
            if acquiring not in done:  # the client left while queued: drop it, compute nothing
                acquiring.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acquiring
                SHED.labels("client_left").inc()
                return
            watching.cancel()
            verdict = acquiring.result()
        QUEUE_SECONDS.observe(time.monotonic() - queued)
        if verdict != "ok":
            SHED.labels("queue_" + verdict).inc()
            await self.answer(send, 503, self.page_for_503(scope, body), self.retry_after)
            return
        admitted = time.monotonic()
        try:
            await self.app(scope, self.replay(body, receive), send)
        finally:
            self.lane.record_hold(time.monotonic() - admitted)
            self.lane.release()

    # --- bodies ---------------------------------------------------------------------------------

    @staticmethod
    async def read_body(receive, limit: int) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def replay(body: bytes, receive):
        given = False

        async def replayed():
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replayed

    def limited(self, receive, send, limit: int):
        """Count the streamed body; past the limit, answer 413 and tell Django the client left.

        Django's ASGI handler reads the whole body before dispatching, so at that point nothing
        has run and nothing was answered: it stops on the disconnect (RequestAborted) silently.
        """
        size = 0

        async def counted():
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    SHED.labels("too_large").inc()
                    await self.answer(send, 413, self.page_413)
                    return {"type": "http.disconnect"}
            return message

        return counted

    # --- answers --------------------------------------------------------------------------------

    def page_for_503(self, scope, body: bytes) -> str:
        """The 503 page; for a login, with the form again and what was typed (not the password)."""
        if scope["path"].rstrip("/") != "/auth/login":
            return self.page_503
        try:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return self.page_503
        value = html.escape(fields.get("identifier", "")[:254])
        csrf = html.escape(fields.get("csrfmiddlewaretoken", "")[:128])
        next_url = html.escape(fields.get("next", "")[:2000])
        checked = " checked" if fields.get("remember") else ""
        form = (
            '<form method="post" action="/auth/login" novalidate>\n'
            f'<input type="hidden" name="csrfmiddlewaretoken" value="{csrf}">\n'
            + (f'<input type="hidden" name="next" value="{next_url}">\n' if next_url else "")
            + '<p><label for="id_identifier">Identifiant</label><br>'
            f'<input type="text" name="identifier" id="id_identifier" value="{value}" '
            'autocomplete="username" autocapitalize="none" spellcheck="false"></p>\n'
            '<p><label for="id_password">Mot de passe</label><br>'
            '<input type="password" name="password" id="id_password" '
            'autocomplete="current-password"></p>\n'
            f'<p><input type="checkbox" name="remember" id="id_remember"{checked}> '
            '<label for="id_remember">Se souvenir de moi</label></p>\n'
            '<p><button type="submit">Connexion</button></p>\n</form>\n'
        )
        return self.page_503.replace("</main>", form + "</main>", 1)

    @staticmethod
    async def answer(send, status: int, page: str, retry_after: str | None = None):
        body = page.encode()
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"connection", b"close"),
            # The headers Django's middleware would have added to a page of ours.
            (b"content-language", b"fr"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (
                b"content-security-policy",
                b"default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ]
        if retry_after:
            headers.append((b"retry-after", retry_after.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # --- access log -----------------------------------------------------------------------------

    @staticmethod
    def log(scope, outcome, started):
        """The request's one line: the access line, with Django's request fields when it answered.

        Django's RequestLogMiddleware leaves its fields (route, request id, client address after
        the trusted proxies, its own duration) in scope["portail.log"] (portail.ops.bridge)
        instead of writing a second line.
        """
        if not access_log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client") or ("-", 0)
        path = redact_path(scope.get("path", ""), scope.get("query_string", b"").decode("latin-1"))
        fields = dict(scope.get("portail.log") or ())
        duration = (time.monotonic() - started) * 1000
        if "duration_ms" in fields:
            fields["django_ms"] = fields.pop("duration_ms")
        fields.update(status=outcome["status"] or None, duration_ms=round(duration, 1))
        access_log.info(
            '%s "%s %s HTTP/%s" %s %s %.1fms',
            client[0],
            scope.get("method", "-"),
            path,
            scope.get("http_version", "1.1"),
            outcome["status"] or "-",  # "-": the client left before an answer
            outcome["bytes"],
            duration,
            extra=fields,
        )
