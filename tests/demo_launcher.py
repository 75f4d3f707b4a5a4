"""`make run`'s launcher (python -m demo) started as `make run` starts it, on free ports, for the
tests: a fresh SQLite file, PORTAIL_DEBUG=1 and nothing else configured."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
DEMO_PASSWORD = "cheval orange batterie agrafe"  # load-demo's parent.test


def _listening(port) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def demo_running(directory: Path):
    ports = {"portal": free_port(), "cas": free_port(), "oidc": free_port()}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAIL_", "DJANGO_"))
        and k not in {"DATABASE_URL", "EMAIL_URL", "REDIS_URL"}
    }
    env.update(PORTAIL_VAR_DIR=str(directory), PORTAIL_DEBUG="1")
    log = directory / "demo.log"
    with open(log, "wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "demo", "--port", str(ports["portal"])]
            + ["--cas-port", str(ports["cas"]), "--oidc-port", str(ports["oidc"])],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        try:
            deadline = time.monotonic() + 120
            while True:
                assert launcher.poll() is None, log.read_text()
                try:
                    urllib.request.urlopen(urls["portal"] + "/healthz", timeout=2)  # noqa: S310 (http://127.0.0.1)
                    break
                except OSError:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.3)
            assert _listening(ports["cas"]) and _listening(ports["oidc"])
            yield {**urls, "log": log, "launcher": launcher, "ports": ports}
        finally:
            if launcher.poll() is None:
                launcher.send_signal(signal.SIGTERM)  # as Ctrl-C: everything stops
                launcher.wait(timeout=30)
