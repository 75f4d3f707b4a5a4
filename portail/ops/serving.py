"""How `portail serve` runs: gunicorn manages the processes, each one an asyncio server (uvicorn).

Why this stack (measured figures in README.md, « Speed »):
- gunicorn as the process manager: restarts a dead worker, graceful reloads on SIGHUP, the signals
  operations teams know; one worker process per core, because Argon2 is CPU-bound.
- uvicorn workers (the `uvicorn-worker` package, Encode's; httptools parser with a 16 KiB bound on
  the request head, uvloop) run Portail's ASGI bridge: a slow client
  (headers or body trickled in) costs a coroutine and a socket, not a whole worker. The sync
  workers of before gave one worker per connection, so two slow clients took the portal down.
- portail.ops.admission in front of Django: body limits before anything is read or spooled, and a
  per-process lane with a queue-time deadline for the Argon2 requests, so an overload is answered
  with 503 + Retry-After within the deadline while pages and static files keep flowing.
"""

import os

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn_worker import UvicornWorker

# What a client may send before its request's headers end: 16 KiB, as nginx's default
# large_client_header_buffers (4 × 8k) — beyond, 431 and the connection is closed (OWASP ASVS 5.0
# V13: bounded resources per request; a client cannot make a worker buffer megabytes of headers).
MAX_HEAD_BYTES = 16 * 1024


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (llhttp, C) with h11's bound on the bytes of a request's head.

    httptools hands every header to a callback as it comes and buffers nothing itself, so uvicorn's
    protocol would collect headers without limit (4 MB of them, or more). h11, used before, refuses
    a head larger than its `max_incomplete_event_size`; this does the same for the bytes received
    from the start of a request until its headers end, counted per chunk read from the socket.
    Why not h11: pure Python, its parser and uvicorn's h11 protocol cost 0.05–0.08 ms of CPU more
    per request than llhttp's (`GET /health/live` through `portail serve`, main and this in the
    same minutes: 0.29–0.32 ms → 0.24 ms; bench/README.md « httptools instead of h11 »).
    """

    head_bytes = 0
    in_head = True  # from the first byte of a request until its headers end

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.in_head and not self.transport.is_closing():
            # Counts the whole chunk: at most one socket read more than the head itself.
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES:
                self.send_431_response()

    def send_431_response(self) -> None:
        message = b"Request Header Fields Too Large"
        self.transport.write(
            STATUS_LINE[431]
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(message)
            + message
        )
        self.transport.close()


class PortailUvicornWorker(UvicornWorker):
    CONFIG_KWARGS = {
        "loop": "uvloop",
        # llhttp (httptools) with the 16 KiB bound on a request's head that h11 had (above).
        "http": BoundedHttpToolsProtocol,
        # The access log is written by portail.ops.admission, with tokens redacted: uvicorn's own
        # would print every path and query string as received (/auth/reset/<token>, ?ticket=…).
        "access_log": False,
        "lifespan": "off",  # Django has no lifespan handler
        # uvicorn would otherwise replace the peer address by the last X-Forwarded-For hop when
        # the peer is 127.0.0.1: junk in REMOTE_ADDR, and no notion of trusted proxies. The
        # client address is Portail's business (security.addresses, PORTAIL_TRUSTED_PROXIES).
        "proxy_headers": False,
    }


def default_workers() -> int:
    # Portail's expensive requests are CPU-bound (Argon2): one process per core.
    return os.cpu_count() or 1


def gunicorn_options(bind: str, workers: int) -> dict:
    return {
        "bind": [bind],
        "workers": workers,
        "worker_class": "portail.ops.serving.PortailUvicornWorker",
        "errorlog": "-",
        # A worker whose event loop stops answering the arbiter for 30 s is stuck: restarted.
        "timeout": 30,
        "graceful_timeout": 20,
        # Idle keep-alive connections are closed after 5 s (behind nginx, which reuses them).
        "keepalive": 5,
        "proc_name": "portail",
        # gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl):
        # two instances on a host would take each other's. Signals still manage the server.
        "control_socket_disable": True,
    }


def build_application(options: dict):
    from gunicorn.app.base import BaseApplication

    class PortailApplication(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            from portail.asgi import application

            return application

    return PortailApplication()
