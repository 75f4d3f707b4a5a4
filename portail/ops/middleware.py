"""Request log line and metrics; the database outage page.

RequestLogMiddleware (first in MIDDLEWARE): request id, one log line and the HTTP metrics for every
request, whatever answered it (a view, a middleware, an error handler). Under `portail serve` it
hands its fields to admission control, which writes the request's one line with the redacted path
(portail.ops.admission.Admission.log); elsewhere (tests, runserver) it writes the line itself.

DatabaseUnavailableMiddleware and `server_error` (the project's handler500): a database that cannot
be reached (OperationalError, InterfaceError) gives the French « service momentanément
indisponible » page with 503 and Retry-After, not a 500 or a reset connection. Nothing is kept
across requests: Django's health checks (CONN_HEALTH_CHECKS) reconnect on the next request once the
database is back.
"""

import logging
import sys
import time
from pathlib import Path

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse

from portail.ops import logs, metrics

log = logging.getLogger("portail.request")
outage_log = logging.getLogger("portail.ops.database")

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# The page says « réessayez dans une minute » (RFC 9110 §10.2.3: Retry-After in seconds).
RETRY_AFTER_SECONDS = 60
# Read once: rendering it needs no template engine, no context, no database.
_UNAVAILABLE_PAGE = (
    Path(__file__).resolve().parent.parent / "templates" / "errors" / "503.html"
).read_bytes()


def unavailable_response() -> HttpResponse:
    response = HttpResponse(_UNAVAILABLE_PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def is_database_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


def _database_unavailable(request, exc) -> HttpResponse:
    metrics.DATABASE_UNAVAILABLE.inc()
    outage_log.warning(
        "base de données injoignable: %s", type(exc).__name__, extra={"detail": str(exc)[:200]}
    )
    return unavailable_response()


class DatabaseUnavailableMiddleware:
    """A view that could not reach the database answers 503 (process_exception)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_database_outage(exception):
            return _database_unavailable(request, exception)
        return None


def server_error(request):
    """handler500: an outage raised outside a view (session save, user lookup) is a 503 too."""
    exc = sys.exc_info()[1]
    if is_database_outage(exc):
        return _database_unavailable(request, exc)
    from portail.security.views import server_error as portal_server_error

    return portal_server_error(request)


class RequestLogMiddleware:
    """One JSON line per request (route name, status, duration, request id), and the metrics."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request_id = logs.request_id_from(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = logs.request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            logs.request_id_var.reset(token)
        duration = time.perf_counter() - started
        response["X-Request-ID"] = request_id
        route = logs.route_name(request)
        method = request.method if request.method in _METHODS else "other"  # bounded labels
        metrics.HTTP_REQUESTS.labels(route, method, str(response.status_code)).inc()
        metrics.HTTP_DURATION.labels(route).observe(duration)
        if route in metrics.OIDC_VALIDATION_ROUTES:  # the toolkit's views, counted by their answer
            metrics.sso_validation("oidc", response.status_code == 200)
        # Never the path (a reset link holds its token), the query string, a header or the body.
        fields = {
            "request_id": request_id,
            "method": request.method,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(duration * 1000, 1),
            "client_ip": getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR"),
        }
        folded = request.META.get("portail.log")
        if folded is not None:  # under `portail serve`: admission control writes the one line
            folded.update(fields)
        else:
            log.info("%s %s %s", request.method, route, response.status_code, extra=fields)
        return response
