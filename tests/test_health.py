"""/health/live and /health/ready for load balancers; /healthz stays an alias of live."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from portail.mail.models import OutgoingMail
from tests.servers import free_port


def test_live_answers_without_looking_at_any_dependency(client):
    # No django_db mark: any database access would raise here.
    for path in ("/health/live", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200 and response.content == b"ok"
        assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_ready_reports_each_dependency_with_its_latency(client):
    OutgoingMail.objects.create(
        to="a@example.org", subject="x", created_at=timezone.now() - timedelta(minutes=10)
    )
    OutgoingMail.objects.create(to="b@example.org", subject="y")
    OutgoingMail.objects.create(to="c@example.org", subject="z", status=OutgoingMail.Status.SENT)

    response = client.get("/health/ready")
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["status"] == "ready"
    checks = body["checks"]
    assert set(checks) == {"database", "cache", "mail_queue"}
    for check in checks.values():
        assert check["ok"] is True and isinstance(check["latency_ms"], float)
    assert checks["mail_queue"]["pending"] == 2
    assert 590 <= checks["mail_queue"]["oldest_age_s"] <= 700


@pytest.mark.django_db
def test_ready_with_redis_down_is_degraded_but_ready(client, settings):
    # A port where nothing listens: every Redis call is refused (a real socket, no mock).
    settings.CACHES = {
        "default": {
            "BACKEND": "portail.ops.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["status"] == "degraded"
    assert body["checks"]["cache"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    for _ in range(3):  # the breaker opens after PORTAIL_CACHE_BREAKER_ERRORS errors: said so
        body = json.loads(client.get("/health/ready").content)
    assert body["checks"]["cache"]["breaker"] == "open"


@pytest.mark.django_db
def test_health_and_metrics_are_exempt_from_the_https_redirect(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/auth/login").status_code == 301  # the rest is redirected
    assert client.get("/health/live").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/health/ready").status_code in (200, 503)
