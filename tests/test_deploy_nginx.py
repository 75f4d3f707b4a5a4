"""deploy/nginx/portail.conf in front of a real `portail serve`, with Debian's nginx.

The site file is used as shipped; only its host-specific literals (ports, certificate, paths) are
replaced for a loopback run, and each replacement must find its literal (a renamed path in the
site fails here instead of silently testing something else). TLS is real: a self-signed
certificate made with `cryptography`. The client connects from 127.0.0.2 so that its address,
not nginx's (127.0.0.1), must reach the audit log through X-Forwarded-For.
"""

import contextlib
import datetime
import http.client
import os
import pwd
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests import servers
from tests.servers import POSTGRES_URL, ROOT

pytestmark = pytest.mark.postgres

SITE = ROOT / "deploy" / "nginx" / "portail.conf"
PAGE_503 = ROOT / "portail" / "templates" / "errors" / "503.html"
CLIENT_IP = "127.0.0.2"


def nginx_binary():
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("CI: nginx is not installed (apt-get install nginx-light)", pytrace=False)
    pytest.skip("nginx is not installed")


def self_signed(folder: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def site_for_test(tmp: Path, https_port: int, http_port: int, app_port: int, static: Path) -> str:
    tls = (ROOT / "deploy" / "nginx" / "portail-tls.conf").read_text()
    for old, new in (
        ("/etc/ssl/portail/fullchain.pem", str(tmp / "cert.pem")),
        ("/etc/ssl/portail/privkey.pem", str(tmp / "key.pem")),
    ):
        assert old in tls, old
        tls = tls.replace(old, new)
    (tmp / "tls.conf").write_text(tls)
    site = SITE.read_text()
    for old, new in (
        ("listen [::]:80;\n", ""),
        ("listen [::]:443 ssl http2;\n", ""),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};"),
        ("/etc/nginx/snippets/portail-tls.conf", str(tmp / "tls.conf")),
        ("/var/lib/portail/static/", f"{static}/"),
        ("/usr/share/portail/503.html", str(PAGE_503)),
    ):
        assert old in site, old
        site = site.replace(old, new)
    temp = tmp / "nginx-temp"
    temp.mkdir()
    # Workers run as the test's user (root in CI would otherwise give them to "nobody", who
    # cannot read pytest's private temporary directories).
    user = pwd.getpwuid(os.getuid()).pw_name
    return f"""
user {user};
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {tmp}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{site}
}}
"""


def wait_for_port(port, proc, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{what} did not listen on {port}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    nginx = nginx_binary()
    servers.require("postgres")
    import psycopg

    tmp = tmp_path_factory.mktemp("nginx")
    var = tmp_path_factory.mktemp("var")
    https_port, http_port, app_port = (servers.free_port() for _ in range(3))
    with contextlib.ExitStack() as cleanup:
        dbname = cleanup.enter_context(servers.postgres_database("portail_opsdeploy_nginx"))
        env = servers.portail_env(
            var,
            DATABASE_URL=f"{POSTGRES_URL}/{dbname}",
            PORTAIL_BASE_URL=f"https://127.0.0.1:{https_port}",
            PORTAIL_BEHIND_PROXY="1",
            # nginx alone is the proxy (the client's own loopback address, 127.0.0.2, is not).
            PORTAIL_TRUSTED_PROXIES="127.0.0.1/32",
            PORTAIL_ALLOWED_HOSTS="127.0.0.1",
        )
        servers.manage(env, "migrate", "-v0")
        self_signed(tmp)
        conf = tmp / "nginx.conf"
        conf.write_text(site_for_test(tmp, https_port, http_port, app_port, var / "static"))
        check = subprocess.run(
            [nginx, "-t", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr

        portal = servers.PortailServer(env, tmp / "portal.log", port=app_port)
        cleanup.enter_context(portal)
        proxy = subprocess.Popen(
            [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cleanup.callback(stop_process, proxy)
        wait_for_port(https_port, proxy, "nginx")
        db = cleanup.enter_context(psycopg.connect(env["DATABASE_URL"], autocommit=True))
        yield {
            "https": https_port,
            "http": http_port,
            "db": db,
            "stop_portal": portal.stop,
            "log": portal.log_path,
        }


def stop_process(proc):
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


class Browser:
    """HTTPS from 127.0.0.2 through nginx, with a cookie jar."""

    def __init__(self, port):
        self.port = port
        self.cookies = {}
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection(
            "127.0.0.1",
            self.port,
            context=self.context,
            source_address=(CLIENT_IP, 0),
            timeout=30,
        )
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read().decode("utf-8", "replace")
        for value in response.headers.get_all("Set-Cookie") or []:
            for key, morsel in SimpleCookie(value).items():
                self.cookies[key] = morsel.value
        conn.close()
        return response, data


def test_failed_login_through_nginx_reaches_the_portal_with_the_clients_address(stack):
    browser = Browser(stack["https"])
    page, html = browser.request("GET", "/auth/login")
    assert page.status == 200, html
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]
    identifier = f"inconnu.{secrets.token_hex(3)}"
    origin = f"https://127.0.0.1:{stack['https']}"
    response, html = browser.request(
        "POST",
        "/auth/login",
        body=urlencode(
            {"csrfmiddlewaretoken": token, "identifier": identifier, "password": "pas-le-bon-1"}
        ),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": origin,
            "Referer": f"{origin}/auth/login",
            # What a client claims itself comes before nginx's own entry and is not believed.
            "X-Forwarded-For": "198.51.100.66",
        },
    )
    assert response.status == 200 and "Connexion" in html  # the form again, with its error
    # The test's database saw no other login (and the typed identifier may be kept only as a
    # keyed hash): the newest failure is this one.
    row = (
        stack["db"]
        .execute(
            "SELECT ip FROM audit_event WHERE tag = 'account.login.failed' ORDER BY id DESC LIMIT 1"
        )
        .fetchone()
    )
    assert row is not None, "the failed login did not reach the portal's audit log"
    assert str(row[0]) == CLIENT_IP


def test_plain_http_is_redirected_to_https(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack["http"], timeout=10)
    conn.request("GET", "/auth/login")
    response = conn.getresponse()
    assert response.status == 301
    assert response.headers["Location"].startswith("https://")


def test_too_large_body_is_refused_by_nginx(stack):
    browser = Browser(stack["https"])
    response, _ = browser.request(
        "POST",
        "/auth/login",
        body=b"x" * (7 * 1024 * 1024),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status == 413


def test_static_files_and_the_503_page_when_the_portal_is_down(stack):
    browser = Browser(stack["https"])
    _, html = browser.request("GET", "/auth/login")
    css = re.search(r'href="(/static/[^"]+\.css)"', html)[1]
    response, body = browser.request("GET", css)
    assert response.status == 200 and body
    assert "immutable" in response.headers["Cache-Control"]

    stack["stop_portal"]()
    # nginx alone: the static file still comes (served from the collected directory)...
    response, again = browser.request("GET", css)
    assert response.status == 200 and again == body
    # ... and a page gets the French 503 page, not nginx's 502.
    response, html = browser.request("GET", "/auth/login")
    assert response.status == 503
    assert response.headers["Retry-After"] == "60"
    assert "Service momentanément indisponible" in html
    assert "Veuillez réessayer dans une minute" in html
