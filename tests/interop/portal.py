"""A running `portail serve` for the interoperability tests, and what it needs to exist.

The clients under test (Node's openid-client, phpCAS) talk to a real server process over loopback
HTTP, in production mode (no DEBUG), configured only from the environment: a SQLite file of its
own (these tests are about the protocol, not the database), its base URL being the loopback
address it listens on so that the issuer the clients check is the one they reach.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import STRONG_PASSWORD

ROOT = Path(__file__).resolve().parent.parent.parent
INTEROP = Path(__file__).resolve().parent
REDIRECT_URI = "https://rp.example.test/callback"
POST_LOGOUT_URI = "https://rp.example.test/bye"
IDENTIFIER = "lea.martin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_tool(name: str) -> str:
    """The tool's path; under CI=true a missing tool fails the test instead of skipping it."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (apt-get install {name if name != 'php' else 'php-cli'})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: {message}", pytrace=False)
    pytest.skip(message)


def wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:4]} exited: {log.read_text()[-4000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (loopback)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# Run by `portail shell` in the server's environment: the school, Léa, and the applications.
SEED = """
import json, os
from oauth2_provider.models import Application as Client
from portail.accounts.models import Profile, State, User
from portail.directory.models import SchoolClass, Structure
from portail.sso.models import Application

spec = json.loads(os.environ["INTEROP_SEED"])
school = Structure.objects.create(uai="0751234A", name="Lycée Claude Monet")
klass = SchoolClass.objects.create(structure=school, name="2nde 3")
user = User.objects.create_user(
    spec["identifier"], spec["password"], first_name="Léa", last_name="Martin",
    profile=Profile.ELEVE, state=State.ACTIVE, email="lea.martin@example.org",
)
user.structures.set([school])
user.classes.set([klass])
out = {}
for name, client_type in (("public", Client.CLIENT_PUBLIC), ("confidential", Client.CLIENT_CONFIDENTIAL)):
    secret = "interop-" + name + "-secret-0123456789abcdef0123456789"
    client = Client.objects.create(
        name="RP " + name, client_type=client_type,
        authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
        redirect_uris=spec["redirect_uri"], post_logout_redirect_uris=spec["post_logout_uri"],
        client_secret=secret, hash_client_secret=True,
        algorithm=Client.RS256_ALGORITHM, skip_authorization=True,
    )
    Application.objects.create(
        name="RP " + name, short_label="RP", url="https://rp.example.test/",
        kind=Application.Kind.OIDC, oidc_client=client,
        released_attributes=["identifier", "displayName", "entProfile", "uai", "classes", "email"],
    )
    out[name] = {"client_id": client.client_id, "client_secret": secret}
Application.objects.create(
    name="Moodle", short_label="MO", url=spec["cas_service"], kind=Application.Kind.CAS,
    cas_service_patterns=spec["cas_service"], cas_rest_enabled=True,
    released_attributes=["identifier", "firstName", "lastName", "displayName", "entProfile",
                         "uai", "classes", "email"],
)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    """`portail serve` on a free loopback port; yields its base URL, clients and account."""
    port = free_port()
    php_port = free_port()  # the CAS service (phpCAS under `php -S`), registered in advance
    base = f"http://127.0.0.1:{port}"
    var = tmp_path_factory.mktemp("portal-var")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAIL_", "DJANGO_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{var}/portail.sqlite3",
        PORTAIL_SECRET_KEY="interop-tests-secret-key-" + "x" * 40,
        PORTAIL_BASE_URL=base,
        PORTAIL_ALLOWED_HOSTS="127.0.0.1",
        PORTAIL_VAR_DIR=str(var),
        PORTAIL_LOG_LEVEL="WARNING",
        EMAIL_URL="smtp://127.0.0.1:1",  # never reached by these flows
        # phpCAS's single logout callback and the services live on loopback http here only.
        PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK="1",
    )
    env.pop("REDIS_URL", None)
    cas_service = f"http://127.0.0.1:{php_port}/"

    def manage(*args, extra_env=None):
        return subprocess.run(
            [sys.executable, "-m", "portail", *args],
            env={**env, **(extra_env or {})},
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout

    manage("migrate", "--noinput")
    seed = {
        "identifier": IDENTIFIER,
        "password": STRONG_PASSWORD,
        "redirect_uri": REDIRECT_URI,
        "post_logout_uri": POST_LOGOUT_URI,
        "cas_service": cas_service,
    }
    clients = json.loads(
        manage("shell", "-c", SEED, extra_env={"INTEROP_SEED": json.dumps(seed)}).splitlines()[-1]
    )
    log = var / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "portail", "serve", "--bind", f"127.0.0.1:{port}"]
            + ["--workers", "1"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(base + "/health/live", server, log)
        yield {
            "base": base,
            "issuer": base + "/o",
            "clients": clients,
            "identifier": IDENTIFIER,
            "password": STRONG_PASSWORD,
            "cas_service": cas_service,
            "php_port": php_port,
            "log": log,
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
