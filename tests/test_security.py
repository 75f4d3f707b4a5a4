"""Production defaults: headers, cookies, settings from the environment, client IP, error pages."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django.urls import path

from portail import urls as portail_urls
from portail.audit.models import Event
from portail.security.addresses import parse_networks
from portail.settings import parse_email_url
from tests.helpers import STRONG_PASSWORD, login, text

ROOT = Path(__file__).resolve().parent.parent


def csp_directives(response):
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part
    }


# --- Headers ----------------------------------------------------------------------------------


@pytest.fixture
def logged_in(client, active_user):
    assert login(client, "jean.dupont", STRONG_PASSWORD).status_code == 302
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/auth/login", "/", "/compte/", "/auth/help"])
def test_pages_send_the_security_headers(logged_in, url):
    # A logged-in user is sent home from the login page: the form is read anonymously.
    response = (Client() if url == "/auth/login" else logged_in).get(url)
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    directives = csp_directives(response)
    # A strict CSP: scripts only from the portal's own files, never inline nor eval.
    assert directives["script-src"] == ["'self'"]
    for directive in ("script-src", "default-src", "style-src"):
        assert "'unsafe-inline'" not in directives.get(directive, [])
        assert "'unsafe-eval'" not in directives.get(directive, [])
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/auth/login", "/", "/compte/"])
def test_account_pages_are_never_cached(logged_in, url):
    # A shared PC in a CDI: the back button must not show someone else's page from cache.
    cache_control = logged_in.get(url)["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control


@pytest.mark.django_db
def test_https_base_url_sends_hsts_and_secure_cookies(client, settings):
    # tests/settings.py sets PORTAIL_BASE_URL=https://ent.example.test, as production does.
    assert settings.PORTAIL_BASE_URL.startswith("https://")
    response = client.get("/auth/login", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    csrf = response.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Lax"


@pytest.mark.django_db
def test_session_cookie_is_secure_httponly_samesite(client, active_user, settings):
    response = login(client, "jean.dupont", STRONG_PASSWORD, secure=True)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"


def settings_from_env(**env):
    """Import portail.settings in a fresh interpreter with exactly these PORTAIL_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAIL_", "EMAIL_URL"))}
    clean.pop("DATABASE_URL", None)
    clean.pop("REDIS_URL", None)
    clean.update({"PORTAIL_VAR_DIR": str(ROOT / "var" / "test-settings"), **env})
    names = [
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_SSL_REDIRECT",
        "SECURE_PROXY_SSL_HEADER",
        "CSRF_TRUSTED_ORIGINS",
        "PORTAIL_BEHIND_PROXY",
        "EMAIL_BACKEND",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_USE_TLS",
    ]
    code = (
        "import json, portail.settings as s; "
        f"print(json.dumps({{n: getattr(s, n, None) for n in {names!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode:
        return {"error": result.stderr}
    return json.loads(result.stdout)


def test_production_on_https_gets_hsts_secure_cookies_and_redirect():
    s = settings_from_env(
        PORTAIL_SECRET_KEY="x" * 50,
        PORTAIL_BASE_URL="https://ent.region.example",
        EMAIL_URL="smtp://smtp.region.example:25",
    )
    assert s["DEBUG"] is False
    assert s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"]
    assert s["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["CSRF_TRUSTED_ORIGINS"] == ["https://ent.region.example"]
    assert s["SECURE_PROXY_SSL_HEADER"] is None


def test_plain_http_dev_setup_has_no_hsts_nor_secure_cookies():
    s = settings_from_env(PORTAIL_DEBUG="1")
    assert s["DEBUG"] is True
    assert not s["SESSION_COOKIE_SECURE"] and not s["CSRF_COOKIE_SECURE"]
    assert s["SECURE_HSTS_SECONDS"] == 0 and not s["SECURE_SSL_REDIRECT"]
    assert s["EMAIL_BACKEND"] == "portail.mail.backends.MailboxBackend"


def test_production_refuses_to_start_without_a_secret_key():
    s = settings_from_env()
    assert "PORTAIL_SECRET_KEY must be set" in s["error"]


def test_behind_proxy_trusts_forwarded_proto_and_email_url_is_read():
    s = settings_from_env(
        PORTAIL_SECRET_KEY="x" * 50,
        PORTAIL_BASE_URL="https://ent.region.example",
        PORTAIL_BEHIND_PROXY="1",
        EMAIL_URL="smtp+tls://portail:secret@smtp.region.example:587",
    )
    assert s["PORTAIL_BEHIND_PROXY"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (s["EMAIL_HOST"], s["EMAIL_PORT"], s["EMAIL_USE_TLS"]) == (
        "smtp.region.example",
        587,
        True,
    )


# --- EMAIL_URL --------------------------------------------------------------------------------


def test_email_url_plain_smtp():
    conf = parse_email_url("smtp://127.0.0.1:2525")
    assert conf["EMAIL_HOST"] == "127.0.0.1" and conf["EMAIL_PORT"] == 2525
    assert not conf["EMAIL_USE_TLS"] and not conf["EMAIL_USE_SSL"]
    assert conf["EMAIL_HOST_USER"] == "" and conf["EMAIL_HOST_PASSWORD"] == ""


def test_email_url_smtp_tls_with_credentials_percent_decoded():
    conf = parse_email_url("smtp+tls://ent%40region.fr:p%40ss%3Aw0rd@smtp.region.fr:587")
    assert conf["EMAIL_HOST"] == "smtp.region.fr" and conf["EMAIL_PORT"] == 587
    assert conf["EMAIL_HOST_USER"] == "ent@region.fr"
    assert conf["EMAIL_HOST_PASSWORD"] == "p@ss:w0rd"
    assert conf["EMAIL_USE_TLS"] and not conf["EMAIL_USE_SSL"]


@pytest.mark.parametrize(
    "url,port", [("smtp://mail", 25), ("smtp+tls://mail", 587), ("smtps://mail", 465)]
)
def test_email_url_default_ports(url, port):
    assert parse_email_url(url)["EMAIL_PORT"] == port


@pytest.mark.parametrize("url", ["http://mail:25", "imap://mail", "mail.example.org:25"])
def test_email_url_bad_scheme_is_refused(url):
    with pytest.raises(ImproperlyConfigured, match="unsupported scheme"):
        parse_email_url(url)


# --- Client IP --------------------------------------------------------------------------------


def failed_login_ip(client, **headers):
    before = set(Event.objects.values_list("pk", flat=True))
    login(client, "jean.dupont", "pas le bon", REMOTE_ADDR="10.0.0.5", **headers)
    event = Event.objects.exclude(pk__in=before).get(tag="account.login.failed")
    return event.ip


@pytest.mark.django_db
@override_settings(
    PORTAIL_BEHIND_PROXY=True,
    PORTAIL_TRUSTED_PROXIES=parse_networks("10.0.0.0/8", variable="PORTAIL_TRUSTED_PROXIES"),
)
def test_behind_proxy_the_client_ip_is_the_hop_the_proxy_saw(client, active_user):
    # The proxy appends the peer it saw; anything before it was written by the client.
    ip = failed_login_ip(client, HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7")
    assert ip == "203.0.113.7"


@pytest.mark.django_db
@override_settings(PORTAIL_BEHIND_PROXY=True)
def test_behind_proxy_an_untrusted_peer_is_not_believed(client, active_user):
    # 10.0.0.5 is not in PORTAIL_TRUSTED_PROXIES (loopback by default): its header is its own.
    assert failed_login_ip(client, HTTP_X_FORWARDED_FOR="203.0.113.7") == "10.0.0.5"


@pytest.mark.django_db
def test_without_proxy_forwarded_for_is_ignored(client, active_user, settings):
    assert settings.PORTAIL_BEHIND_PROXY is False
    assert failed_login_ip(client, HTTP_X_FORWARDED_FOR="203.0.113.7") == "10.0.0.5"


@pytest.mark.django_db
def test_behind_proxy_the_address_budget_counts_per_forwarded_ip(client, active_user, settings):
    # All through the settings fixture: mixed with override_settings, its undo would restore
    # the decorator's values after the decorator had restored the real ones.
    settings.PORTAIL_BEHIND_PROXY = True
    settings.PORTAIL_TRUSTED_PROXIES = parse_networks("10.0.0.0/8", variable="T")
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "login:address": (2, 86400)}
    for _ in range(2):
        failed_login_ip(client, HTTP_X_FORWARDED_FOR="203.0.113.7")
    # Over budget: a challenge before any password check, never a 429.
    proxy = {"REMOTE_ADDR": "10.0.0.5"}
    slowed = login(client, "autre.personne", "x", HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)
    assert slowed.status_code == 200 and "portail-challenge" in slowed.content.decode()
    other_school = login(
        client, "autre.personne", "x", HTTP_X_FORWARDED_FOR="198.51.100.20", **proxy
    )
    assert other_school.status_code == 200
    assert "portail-challenge" not in other_school.content.decode()


# --- Error pages ------------------------------------------------------------------------------


def boom(request):
    raise RuntimeError("secret internal detail /srv/portail/db.py line 42")


urlpatterns = [path("boom", boom), *portail_urls.urlpatterns]
handler500 = "portail.security.views.server_error"
handler404 = "portail.security.views.page_not_found"


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.test_security", DEBUG=False)
def test_server_error_is_a_french_page_without_stack_trace():
    client = Client(raise_request_exception=False)
    response = client.get("/boom")
    assert response.status_code == 500
    page = text(response)
    assert "Erreur du serveur" in page and "Une erreur inattendue s'est produite." in page
    assert "Traceback" not in page and "RuntimeError" not in page and "secret internal" not in page
    assert '<html lang="fr">' in page


@pytest.mark.django_db
def test_unknown_page_is_a_french_404(client):
    response = client.get("/nulle-part")
    assert response.status_code == 404
    page = text(response)
    assert "Page introuvable" in page and "Retour à l'écran d'accueil" in page
    assert "Traceback" not in page and "Page not found" not in page


@pytest.mark.django_db
def test_csrf_failure_is_a_french_page(active_user):
    client = Client(enforce_csrf_checks=True)
    response = login(client, "jean.dupont", STRONG_PASSWORD)
    assert response.status_code == 403
    page = text(response)
    assert "Page expirée" in page and "Le formulaire a expiré" in page
    assert "CSRF" not in page and "Forbidden" not in page
    # Nobody was logged in by the forged request.
    assert "_auth_user_id" not in client.session
