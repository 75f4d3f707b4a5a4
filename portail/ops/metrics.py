"""Prometheus metrics, correct with several worker processes, served at /metrics to an allow-list.

Every metric lives in prometheus_client's default registry; other packages add their own objects
there (`from prometheus_client import Counter`) and they are exported with these.

Several workers: prometheus_client's multiprocess mode. It needs PROMETHEUS_MULTIPROC_DIR set,
to an empty directory, before any worker creates a metric. `portail serve` calls
`prepare_multiprocess_dir()` in the master before forking (or the operator sets the variable,
e.g. systemd's RuntimeDirectory); `worker_exited` is gunicorn's `child_exit` hook, so that gauges
of a dead worker disappear. Without the variable (one process: tests, `make run`) metrics are kept
in memory.
"""

import ipaddress
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(path: str | None = None) -> str:
    """For the server's master, before forking workers: an empty directory for the workers' files.

    Uses PROMETHEUS_MULTIPROC_DIR when set (emptied: files of a previous run would add up),
    else a fresh temporary directory. Returns the path; call `cleanup_multiprocess_dir` at exit.
    """
    path = path or os.environ.get(MULTIPROC_ENV)
    if path:
        directory = Path(path)
        if directory.exists():
            for entry in directory.glob("*.db"):
                entry.unlink()
        directory.mkdir(parents=True, exist_ok=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix="portail-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    _use_multiprocess_values()
    return str(directory)


def cleanup_multiprocess_dir(path: str):
    shutil.rmtree(path, ignore_errors=True)


def worker_exited(server, worker):
    """gunicorn's child_exit hook: a dead worker's live gauges stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def _use_multiprocess_values():
    # prometheus_client chooses in-memory or file-backed values when it is imported: switch, and
    # give the metrics that already exist (this module's, those of others imported before) new
    # file-backed values, so that calling this after the imports is still correct.
    from prometheus_client import values
    from prometheus_client.metrics import MetricWrapperBase

    values.ValueClass = values.get_value_class()
    for collector in list(REGISTRY._collector_to_names):
        if isinstance(collector, MetricWrapperBase):
            if collector._is_parent():
                with collector._lock:
                    collector._metrics.clear()  # children are made again, file-backed
            else:
                collector._metric_init()


# --- The metrics ------------------------------------------------------------------------------

# Durations of Portail's pages: tens of ms, Argon2 logins ~50-100 ms, 503s under load up to 2 s.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "portail_http_requests",
    "HTTP requests answered, by route name and status",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "portail_http_request_duration_seconds",
    "Time to answer an HTTP request in the application, by route name",
    ["route"],
    buckets=DURATION_BUCKETS,
)
AUDIT_EVENTS = Counter("portail_audit_events", "Audit events recorded, by tag", ["tag"])
LOGINS = Counter(
    "portail_logins",
    "Login attempts by outcome (success, failed, blocked, deactivated)",
    ["outcome"],
)
SSO_VALIDATIONS = Counter(
    "portail_sso_validations",
    "Single sign-on validations by protocol (cas, oidc) and outcome (success, failure)",
    ["protocol", "outcome"],
)
CACHE_ERRORS = Counter(
    "portail_cache_errors",
    "Cache calls that failed (answered as a miss), by operation",
    ["operation"],
)
CACHE_SKIPPED = Counter(
    "portail_cache_skipped",
    "Cache calls skipped while the circuit breaker is open, by operation",
    ["operation"],
)
CACHE_BREAKER_TRIPS = Counter(
    "portail_cache_breaker_trips", "Times the cache circuit breaker opened", ["cache"]
)
CACHE_BREAKER_OPEN = Gauge(
    "portail_cache_breaker_open",
    "1 while the cache circuit breaker is open in at least one worker",
    ["cache"],
    multiprocess_mode="livemax",
)
DATABASE_UNAVAILABLE = Counter(
    "portail_database_unavailable",
    "Requests answered 503 because the database could not be reached",
)

_LOGIN_OUTCOMES = {
    "account.login": "success",
    "account.login.failed": "failed",
    "account.login.blocked": "blocked",
    "account.login.deactivated": "deactivated",
}


def audit_event(tag: str):
    """Called by audit.services.record() for every event."""
    AUDIT_EVENTS.labels(tag).inc()
    outcome = _LOGIN_OUTCOMES.get(tag)
    if outcome:
        LOGINS.labels(outcome).inc()


# OpenID Connect validations: a code (or refresh token) exchanged, an access token presented.
OIDC_VALIDATION_ROUTES = {"oauth2_provider:token", "oauth2_provider:user-info"}


def sso_validation(protocol: str, success: bool):
    SSO_VALIDATIONS.labels(protocol, "success" if success else "failure").inc()


# --- The endpoint -----------------------------------------------------------------------------


def _networks():
    return [ipaddress.ip_network(cidr, strict=False) for cidr in settings.PORTAIL_METRICS_ALLOWED]


def allowed(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks())


# Collectors that read their values at scrape time (from the database): the same in every process,
# so they are added to the per-scrape registry of the multiprocess mode too.
_SCRAPE_TIME_COLLECTORS = []


def register_scrape_time_collector(collector) -> None:
    _SCRAPE_TIME_COLLECTORS.append(collector)
    REGISTRY.register(collector)


def metrics_view(request):
    # Both the peer and the address the proxy vouched for must be allowed: a scraper reaching the
    # node directly cannot pass with a forged X-Forwarded-For, nor a client through the proxy.
    if not (
        allowed(request.META.get("REMOTE_ADDR")) and allowed(getattr(request, "client_ip", None))
    ):
        raise Http404
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in _SCRAPE_TIME_COLLECTORS:
            registry.register(collector)
    else:
        registry = REGISTRY
    # The classic text format (0.0.4), which every Prometheus version reads.
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
