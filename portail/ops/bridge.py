"""Django's WSGI handler behind the ASGI server, with one thread hand-over per request.

Why not Django's ASGI handler (measured, README « Speed »): it runs a sync project's middleware and
views through asgiref's sync_to_async, with a ThreadSensitiveContext per request (a new thread
each time) and a dozen hand-overs between the event loop and that thread (middleware that is
sync-only, the request signals, the body's spooling, the response's iteration): ~2.7 ms of server
CPU for `GET /health/live`. Here the event loop does what only it can do cheaply and without a
thread — read the request's body however slowly the client sends it (admission control has already
bounded its size), write the answer — and the whole Django part (middleware, view, response
iteration, `close()` with request_finished) runs in one call in a bounded pool of threads.

a2wsgi (PyPI) does the same in general, but reads the body from the worker thread (a slow client
would hold a thread) and hands every response chunk back to the loop one by one; Portail's answers
are pages, JSON and small static files (no streaming response), so the whole answer is collected
in the thread and sent at once.

The pool's threads keep their own database connection (Django's connections are per thread), taken
from and given back to the per-process psycopg pool by Django's request signals.
"""

import asyncio
import io
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

# A body larger than this is spooled to a temporary file instead of memory (Django's own setting
# for uploads, 2.5 MB by default); admission control has bounded it already.
_SPOOL_BYTES = 2_621_440


def environ_for(scope, body) -> dict:
    """The WSGI environ (PEP 3333) of an ASGI HTTP scope whose body was read whole."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    script_name = scope.get("root_path", "").encode("utf8").decode("latin1")
    path = scope["path"].encode("utf8").decode("latin1")
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin1"),
        "SERVER_NAME": server[0] if server else "localhost",
        "SERVER_PORT": str(server[1]) if server and server[1] else "80",
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "REMOTE_ADDR": client[0] if client else "",
        "REMOTE_PORT": str(client[1]) if client else "0",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        # RequestLogMiddleware puts the request line's fields here instead of logging them:
        # admission control writes the one line of the request (portail.ops.admission.log).
        "portail.log": {},
    }
    for name, value in scope.get("headers", ()):
        name = name.decode("latin1")
        value = value.decode("latin1")
        if name == "content-length":
            environ["CONTENT_LENGTH"] = value
        elif name == "content-type":
            environ["CONTENT_TYPE"] = value
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in environ:  # repeated headers: joined, as PEP 3333 servers do
                value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
            environ[key] = value
    return environ


def call_wsgi(app, environ):
    """In a pool thread: the whole Django request, (status, headers, body)."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split(" ", 1)[0])
        answer["headers"] = [
            # Django writes Set-Cookie values with a leading space (SimpleCookie's output).
            (name.lower().encode("latin1"), value.strip().encode("latin1"))
            for name, value in headers
        ]
        return lambda data: chunks.append(data)  # the legacy write() callable

    chunks = []
    response = app(environ, start_response)
    try:
        chunks.extend(response)
    finally:
        if hasattr(response, "close"):
            response.close()  # request_finished: the connection goes back to the pool
        environ["wsgi.input"].close()
    return answer["status"], answer["headers"], b"".join(chunks)


class WsgiBridge:
    """An ASGI application running a WSGI application in `threads` threads."""

    def __init__(self, wsgi_app, threads: int):
        self.app = wsgi_app
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="django")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return  # lifespan is off; no websockets
        body = await self.read_body(receive)
        if body is None:
            return  # the client left, or admission control answered 413
        environ = environ_for(scope, body)
        loop = asyncio.get_running_loop()
        status, headers, content = await loop.run_in_executor(
            self.pool, call_wsgi, self.app, environ
        )
        scope["portail.log"] = environ["portail.log"]  # the request line's fields (logs)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if scope["method"] == "HEAD":
            content = b""
        await send({"type": "http.response.body", "body": content})

    @staticmethod
    async def read_body(receive):
        """The whole body, read on the event loop (a slow client costs no thread), or None."""
        chunks, size, spool = [], 0, None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                if spool is not None:
                    spool.close()
                return None
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if spool is None and size > _SPOOL_BYTES:
                    # Closed by call_wsgi after the request, or below on a disconnect.
                    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
                    spool.write(b"".join(chunks))
                    chunks = []
                if spool is not None:
                    spool.write(chunk)
                else:
                    chunks.append(chunk)
            if not message.get("more_body", False):
                if spool is not None:
                    spool.seek(0)
                    return spool
                return io.BytesIO(b"".join(chunks))
