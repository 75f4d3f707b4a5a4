"""Health checks for load balancers: /health/live (the process answers) and /health/ready.

/health/ready checks the database, the cache and the mail queue, each with its latency:
- database down: 503, this node must not receive traffic;
- cache down (Redis): 200 « degraded », the portal works from the database (see ops.cache);
- mail queue: its depth and the age of its oldest waiting mail (the workers may be late, the node
  still serves).
"""

import time

from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache


def _timed(check):
    started = time.perf_counter()
    try:
        result = {"ok": True, **(check() or {})}
    except Exception as exc:  # noqa: BLE001 (any failure of a dependency is "not ok", said in JSON)
        result = {"ok": False, "error": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache():
    breaker = getattr(cache, "breaker", None)
    key = "portail:health:probe"
    value = str(time.time())
    cache.set(key, value, 30)
    # The resilient cache never raises: a value that did not come back means Redis is not there.
    if cache.get(key) != value:
        raise ConnectionError("cache unavailable")
    return {"breaker": breaker.state} if breaker else {}


def _mail_queue():
    from portail.mail.models import OutgoingMail

    waiting = OutgoingMail.objects.filter(status=OutgoingMail.Status.PENDING)
    oldest = waiting.order_by("created_at").values_list("created_at", flat=True).first()
    age = (timezone.now() - oldest).total_seconds() if oldest else 0
    return {"pending": waiting.count(), "oldest_age_s": round(age)}


@never_cache
def live(request):
    """The process is up and answers; no dependency is looked at."""
    return HttpResponse("ok", content_type="text/plain")


@never_cache
def ready(request):
    checks = {"database": _timed(_database)}
    if checks["database"]["ok"]:
        checks["mail_queue"] = _timed(_mail_queue)
    else:
        connection.close()  # the next request reconnects (or fails fast) instead of reusing it
    checks["cache"] = _timed(_cache)
    if not checks["cache"]["ok"]:
        breaker = getattr(cache, "breaker", None)
        if breaker:
            checks["cache"]["breaker"] = breaker.state
    if not checks["database"]["ok"]:
        status, code = "unavailable", 503
    elif not checks["cache"]["ok"] or not checks.get("mail_queue", {}).get("ok", True):
        status, code = "degraded", 200  # served from the database; say so, stay in rotation
    else:
        status, code = "ready", 200
    response = JsonResponse({"status": status, "checks": checks}, status=code)
    if code == 503:
        response["Retry-After"] = "10"
    return response
