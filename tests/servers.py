"""One way to run the real thing from a test or a benchmark: `python -m portail <command>` in a
process of its own, and `portail serve` (gunicorn + uvicorn workers) on a free loopback port.

Standard library only, so that bench/_serving.py can import it without Django.

    env = portail_env(tmp_path / "var", PORTAIL_BASE_URL="https://127.0.0.1")
    manage(env, "migrate", "--noinput")
    create_user(env, "prod.path")
    with PortailServer(env, tmp_path / "serve.log") as server:
        urllib.request.urlopen(server.url("/auth/login"))
"""

import contextlib
import http.cookies
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The tests' PostgreSQL server (each test creates and drops a database of its own there).
POSTGRES_URL = os.environ.get("PORTAIL_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
# A wait for start-up (migrations of a cold process, collectstatic), not an assertion on time.
START_SECONDS = 120
STOP_SECONDS = 20
COMMAND_SECONDS = 300

# What the child must not inherit from the test's process: the test settings module, the
# developer's own portal configuration, and the database or Redis the test run itself uses.
_NOT_INHERITED_PREFIXES = ("PORTAIL_", "DJANGO_")
_NOT_INHERITED = {"DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"}


def free_port() -> int:
    """A loopback TCP port nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require(*names: str) -> None:
    """Skip outside CI, fail under CI=true, when a named service (tests/require_services.py)
    does not answer."""
    import pytest

    from tests.require_services import SERVICES, reachable

    missing = [name for name in names if not reachable(*SERVICES[name])]
    if not missing:
        return
    message = f"service(s) not reachable: {', '.join(missing)}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: {message}", pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def postgres_database(prefix: str):
    """A new PostgreSQL database `<prefix>_<random>` on POSTGRES_URL, dropped afterwards: its name."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def portail_env(var_dir, **overrides) -> dict:
    """The environment of a `python -m portail` child, configured only from it as in production.

    The parent's PORTAIL_*, DJANGO_*, DATABASE_URL, REDIS_URL and PROMETHEUS_MULTIPROC_DIR are
    left out (so SQLite in `var_dir` unless DATABASE_URL is given); a random secret key; mail to
    a closed port. `overrides` are set as given; a value of None removes the variable.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_NOT_INHERITED_PREFIXES) and key not in _NOT_INHERITED
    }
    env.update(
        PYTHONPATH=str(ROOT),
        PORTAIL_SECRET_KEY=secrets.token_urlsafe(50),
        PORTAIL_VAR_DIR=str(var_dir),
        EMAIL_URL="smtp://127.0.0.1:1",  # nothing listens there: a flow that mails must say so
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def python_output(code: str, **overrides) -> str:
    """The output of `python -c CODE` run in ROOT with this process's environment less its
    PORTAIL_* variables, plus `overrides`: what portail/settings.py makes of an environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAIL_")}
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def portail_command(*args: str) -> list[str]:
    """The argv of `python -m portail ARGS` (run it with cwd=ROOT)."""
    return [sys.executable, "-m", "portail", *args]


def manage(env: dict, *args: str, check: bool = True, timeout: float = COMMAND_SECONDS):
    """Run `portail ARGS` to its end: the CompletedProcess (text output captured).

    With `check`, a non-zero exit fails with the command's own output, not a bare status.
    """
    result = subprocess.run(
        portail_command(*args),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"portail {' '.join(args)} exited with {result.returncode}:\n"
            f"{result.stdout[-4000:]}{result.stderr[-4000:]}"
        )
    return result


def create_user(
    env: dict,
    identifier: str,
    password: str,
    first_name: str,
    last_name: str,
    profile: str = "PARENT",
    email: str = "",
) -> None:
    """An active account, created through `portail shell` in the child's own database."""
    manage(
        env,
        "shell",
        "-c",
        "from portail.accounts.models import User, State, Profile; "
        f"User.objects.create_user({identifier!r}, {password!r}, first_name={first_name!r}, "
        f"last_name={last_name!r}, profile=Profile.{profile}, state=State.ACTIVE, "
        f"email={email!r})",
    )


class PortailServer:
    """`portail serve` on 127.0.0.1:`port` (a free one by default), its output in `log_path`.

    start() returns once GET `ready` answers 200 (or raises with the log if the process exits
    or never answers); stop() terminates it (SIGTERM: gunicorn stops its workers), then kills
    its whole process group if it does not end. A context manager; start() again after stop()
    appends to the same log.
    """

    def __init__(
        self,
        env: dict,
        log_path,
        workers: int = 1,
        port: int | None = None,
        args=(),
        ready: str = "/health/live",
    ):
        self.env = env
        self.log_path = Path(log_path)
        self.workers = workers
        self.port = port or free_port()
        self.args = list(args)
        self.ready = ready
        self.process = None
        self._log = None
        self._started_before = False

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_text(self) -> str:
        if self._log is not None:
            self._log.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def command(self) -> list[str]:
        """The server's argv (run with cwd=ROOT)."""
        return portail_command("serve", "--bind", f"127.0.0.1:{self.port}") + [
            "--workers",
            str(self.workers),
            *self.args,
        ]

    def start(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab" if self._started_before else "wb")  # noqa: SIM115 (closed in stop)
        self._started_before = True
        self.process = subprocess.Popen(
            self.command(),
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stop() can reach stray workers
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            if self.process.poll() is not None:
                log = self.log_text()
                self.stop()
                raise RuntimeError(f"portail serve exited: {log}")
            try:
                with urllib.request.urlopen(self.url(self.ready), timeout=2) as response:  # noqa: S310 (loopback)
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"portail serve did not answer {self.ready}: {self.log_text()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers to look at (a login's 302), not to follow."""

    def redirect_request(self, *args, **kwargs):
        return None


class ProxiedClient:
    """A browser-less HTTP client of one `portail serve`, as if through the region's TLS proxy:
    its cookie jar (share one jar between two clients for one browser behind a load balancer), the
    CSRF token and Origin on every form, and the address the proxy appends (`forwarded`)."""

    forwarded = "203.0.113.7"
    user_agent = "portail-tests"
    timeout = 30

    def __init__(self, port, jar=None):
        self.base = f"http://127.0.0.1:{port}"
        self.origin = f"https://127.0.0.1:{port}"
        self.jar = {} if jar is None else jar

    def request(self, path, data=None, proxied=True):
        """GET, or POST `data` as a form; the response with `.text`, whatever its status."""
        headers = {"User-Agent": self.user_agent}
        if proxied:
            headers |= {"X-Forwarded-Proto": "https", "X-Forwarded-For": self.forwarded}
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        body = None
        if data is not None:
            data = {"csrfmiddlewaretoken": self.jar.get("csrftoken", ""), **data}
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
        req = urllib.request.Request(self.base + path, data=body, headers=headers)  # noqa: S310
        try:
            response = _NO_REDIRECT.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            response = error
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in http.cookies.SimpleCookie(header).items():
                if morsel["max-age"] == "0" or morsel.value == "":
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = morsel.value
        response.text = response.read().decode()
        return response


_NO_REDIRECT = urllib.request.build_opener(NoRedirect)
