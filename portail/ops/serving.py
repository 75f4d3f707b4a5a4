"""How `portail serve` runs: gunicorn manages the processes, each one an asyncio server (uvicorn).

Why this stack (measured figures in README.md, « Speed »):
- gunicorn as the process manager: restarts a dead worker, graceful reloads on SIGHUP, the signals
  operations teams know; one worker process per core, because Argon2 is CPU-bound.
- uvicorn workers (the `uvicorn-worker` package, Encode's; h11 parser, uvloop) run Django's ASGI
  handler: a slow client
  (headers or body trickled in) costs a coroutine and a socket, not a whole worker. The sync
  workers of before gave one worker per connection, so two slow clients took the portal down.
- portail.ops.admission in front of Django: body limits before anything is read or spooled, and a
  per-process lane with a queue-time deadline for the Argon2 requests, so an overload is answered
  with 503 + Retry-After within the deadline while pages and static files keep flowing.
"""

import os

from uvicorn_worker import UvicornWorker


class PortailUvicornWorker(UvicornWorker):
    CONFIG_KWARGS = {
        "loop": "uvloop",
        # h11 bounds what a client may send before its headers end (16 KiB, as nginx's default
        # large_client_header_buffers of 4 × 8k); httptools would buffer megabytes of headers.
        # Measured: no CPU difference per request within this machine's noise.
        "http": "h11",
        "h11_max_incomplete_event_size": 16 * 1024,
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
