"""/metrics: Prometheus text, behind an address allow-list, correct with several workers."""

import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import servers
from tests.helpers import STRONG_PASSWORD, login
from tests.test_faults_redis import serve_env


def scrape(client, **extra):
    response = client.get("/metrics", **extra)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content.decode()


def value(text, name, **labels):
    """The sample `name{labels}` in a scrape (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0


@pytest.mark.django_db
def test_logins_by_outcome_audit_tags_and_requests_by_route(client, active_user):
    before = scrape(client)
    login(client, "jean.dupont", "pas le bon")
    login(client, "jean.dupont", STRONG_PASSWORD)
    client.get("/auth/reset/a-token-that-is-not-valid")
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("portail_logins_total", outcome="failed") == 1
    assert delta("portail_logins_total", outcome="success") == 1
    assert delta("portail_audit_events_total", tag="account.login") == 1
    assert delta("portail_audit_events_total", tag="account.login.failed") == 1
    route = {"route": "accounts:login", "method": "POST"}
    assert delta("portail_http_requests_total", status="200", **route) == 1
    assert delta("portail_http_requests_total", status="302", **route) == 1
    assert delta("portail_http_request_duration_seconds_count", route="accounts:login") == 2
    # Routes are named by their pattern: no token ever becomes a label.
    assert delta("portail_http_requests_total", route="recovery:reset_link") == 1
    assert "a-token-that-is-not-valid" not in after


@pytest.mark.django_db
def test_sso_validations_are_counted(client):
    before = scrape(client)
    client.get("/cas/validate", {"ticket": "ST-unknown", "service": "https://app.example.org/"})
    client.get(
        "/cas/serviceValidate", {"ticket": "ST-unknown", "service": "https://app.example.org/"}
    )
    client.post("/o/token/", {"grant_type": "authorization_code", "code": "nope"})
    after = scrape(client)
    cas = {"protocol": "cas", "outcome": "failure"}
    oidc = {"protocol": "oidc", "outcome": "failure"}
    assert (
        value(after, "portail_sso_validations_total", **cas)
        - value(before, "portail_sso_validations_total", **cas)
        == 2
    )
    assert (
        value(after, "portail_sso_validations_total", **oidc)
        - value(before, "portail_sso_validations_total", **oidc)
        == 1
    )


@pytest.mark.django_db
def test_metrics_are_for_allowed_addresses_only(client, settings):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404
    settings.PORTAIL_METRICS_ALLOWED = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics").status_code == 404  # loopback is no longer in the list
    settings.PORTAIL_METRICS_ALLOWED = ["127.0.0.0/8"]
    settings.PORTAIL_BEHIND_PROXY = True
    # Through the proxy, the client's address is what counts ...
    outside = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert outside.status_code == 404
    # ... and reaching the node directly with a forged header does not help.
    forged = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", headers={"X-Forwarded-For": "127.0.0.1"}
    )
    assert forged.status_code == 404


def test_counts_are_whole_across_several_workers(tmp_path):
    """Two gunicorn workers: every scrape, whichever worker answers it, counts every request."""
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    env = serve_env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    servers.manage(env, "migrate", "--noinput")
    with servers.PortailServer(env, tmp_path / "serve.log", workers=2) as server:

        def get(path):
            with urllib.request.urlopen(server.url(path), timeout=30) as response:  # noqa: S310
                return response.read().decode()

        requests = 40
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: get("/health/ready"), range(requests)))
        scrapes = [get("/metrics") for _ in range(6)]
    labels = {"route": "health-ready", "method": "GET", "status": "200"}
    for text in scrapes:
        assert value(text, "portail_http_requests_total", **labels) == requests
        # Read from the database at scrape time: present whichever worker answers.
        assert 'portail_mail_queue_depth{state="pending"} 0.0' in text


def test_prepare_multiprocess_dir_empties_it_and_switches_to_files(tmp_path):
    """What `portail serve` calls in its master before forking (in a process of its own here)."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_12345.db").write_bytes(b"stale counts of a previous run")
    code = (
        "from portail.ops import metrics; "  # imported first: its metrics exist already
        f"print(metrics.prepare_multiprocess_dir({str(directory)!r})); "
        "metrics.DATABASE_UNAVAILABLE.inc(); "
        "metrics.LOGINS.labels('success').inc(3); "
        "from prometheus_client import CollectorRegistry, generate_latest, multiprocess; "
        "registry = CollectorRegistry(); multiprocess.MultiProcessCollector(registry); "
        "print(generate_latest(registry).decode())"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=servers.ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    first, out = out.split("\n", 1)
    assert first == str(directory)
    assert "counter_12345.db" not in os.listdir(directory)
    # Read back from the files, as the /metrics of any other worker would.
    assert value(out, "portail_database_unavailable_total") == 1
    assert value(out, "portail_logins_total", outcome="success") == 3
