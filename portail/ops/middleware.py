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

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.urls import set_urlconf
from django.utils.module_loading import import_string

from portail.ops import logs, metrics
from portail.ops.routes import plain_match

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


# --- The short stack of the back-channel endpoints ----------------------------------------------

# The machine-to-machine endpoints: a relying party's back end (CAS validation, OIDC token,
# userinfo, introspection, revocation, keys) or a load balancer (health). None reads a cookie or
# renders a page, so sessions, locale negotiation, CSRF (every POST-able one is csrf_exempt),
# authentication from the session, the open-sessions index, messages and the SAML front-channel
# logout page have nothing to do there (tests/sso/test_back_channel.py checks each).
BACK_CHANNEL_PATHS = frozenset(
    {
        "/cas/validate",
        "/cas/serviceValidate",
        "/cas/p3/serviceValidate",
        "/cas/proxyValidate",
        "/cas/p3/proxyValidate",
        "/cas/samlValidate",
        "/cas/proxy",
        "/o/token/",
        "/o/userinfo/",
        "/o/introspect/",
        "/o/revoke_token/",
        "/o/.well-known/jwks.json",
        "/health/live",
        "/health/ready",
        "/healthz",
    }
)

# What those endpoints still get after RequestLogMiddleware, SecurityMiddleware (HSTS, nosniff,
# referrer and opener policies, the HTTPS redirect) and ClientIPMiddleware, which come before
# BackChannelMiddleware in MIDDLEWARE: the Host check and Content-Length (CommonMiddleware), the
# framing and content policies every answer carries (OWASP ASVS 5.0 V3.4), no-store (RFC 6749
# §5.1 for tokens; NoStoreMiddleware) and the database outage's 503. Same order as MIDDLEWARE.
BACK_CHANNEL_MIDDLEWARE = (
    "django.middleware.common.CommonMiddleware",
    "portail.ops.middleware.FramingPolicyMiddleware",  # X-Frame-Options and django-csp's policy
    "portail.security.middleware.NoStoreMiddleware",
    "portail.ops.middleware.DatabaseUnavailableMiddleware",
)


class FramingPolicyMiddleware:
    """What XFrameOptionsMiddleware and django-csp's CSPMiddleware add to an answer, for the
    back-channel endpoints: the same headers, their values built once per process.

    django-csp builds its policy string from the settings twice per response (the policy and the
    report-only one), ~0.04 ms each; the back-channel views use no nonce and no per-response
    policy, so the string is the same every time. An answer that carries a per-response policy
    (_csp_update, _csp_replace, _csp_config) or the exemptions still goes through the library.
    """

    def __init__(self, get_response):
        from csp.constants import HEADER, HEADER_REPORT_ONLY
        from csp.middleware import CSPMiddleware
        from csp.utils import build_policy
        from django.middleware.clickjacking import XFrameOptionsMiddleware

        self.get_response = get_response
        self.csp = CSPMiddleware(get_response)
        self.frame_options = XFrameOptionsMiddleware(get_response).get_xframe_options_value(
            None, None
        )
        self.policies = []
        for header, report_only, setting in (
            (HEADER, False, "CONTENT_SECURITY_POLICY"),
            (HEADER_REPORT_ONLY, True, "CONTENT_SECURITY_POLICY_REPORT_ONLY"),
        ):
            policy = build_policy(report_only=report_only)
            if policy:
                excluded = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES")
                self.policies.append((header, policy, tuple(excluded or ())))

    def __call__(self, request):
        response = self.get_response(request)
        if response.get("X-Frame-Options") is None and not getattr(
            response, "xframe_options_exempt", False
        ):
            response["X-Frame-Options"] = self.frame_options
        if any(
            hasattr(response, name)
            for name in (
                "_csp_update",
                "_csp_replace",
                "_csp_config",
                "_csp_exempt",
                "_csp_exempt_ro",
            )
        ) or (settings.DEBUG and response.status_code in (404, 500)):
            return self.csp.process_response(request, response)
        for header, policy, excluded in self.policies:
            if header not in response and not request.path_info.startswith(excluded):
                response[header] = policy
        return response


class _ShortHandler(BaseHandler):
    """Django's handler (URL resolution, view middleware, exception handling) with its own
    middleware list: BaseHandler.load_middleware reads settings.MIDDLEWARE, this one `names`
    (synchronous middleware only, which all of BACK_CHANNEL_MIDDLEWARE is)."""

    def __init__(self, names):
        super().__init__()
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for name in reversed(names):
            instance = import_string(name)(handler)
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler

    def resolve_request(self, request):
        """Django's resolve_request, with the kept match of each back-channel path (they capture
        nothing: ops.routes); the path resolves as in Django otherwise."""
        urlconf = getattr(request, "urlconf", None)
        if urlconf is not None:
            set_urlconf(urlconf)
        match = plain_match(request.path_info, urlconf)
        if match is None:
            return super().resolve_request(request)
        request.resolver_match = match
        return match


class BackChannelMiddleware:
    """The back-channel endpoints go through BACK_CHANNEL_MIDDLEWARE only, every other request
    through the rest of MIDDLEWARE (README « Serving under load »: ~0.2 ms of CPU saved on each
    validation, userinfo and token request, measured in bench/README.md).

    Placed in MIDDLEWARE after the request log, SecurityMiddleware and the client address, so the
    same dispatch runs under `portail serve`, runserver and the tests' client alike.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.back_channel = _ShortHandler(BACK_CHANNEL_MIDDLEWARE)._middleware_chain

    def __call__(self, request):
        if request.path_info in BACK_CHANNEL_PATHS:
            return self.back_channel(request)
        return self.get_response(request)
