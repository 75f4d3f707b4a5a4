"""Structured logs: JSON lines in production, plain text in development; one line per request.

The request line (written by ops.middleware.RequestLogMiddleware) names the route, never the path:
a reset link's path holds its token. Query strings, bodies and headers other than the request id
are never logged. Every other log line written while a request is served carries its request id.
"""

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# A proxy's or load balancer's id is kept when it is a plain token (a UUID, a hex string); anything
# else (too long, spaces, quotes, newlines) could forge log lines and is replaced.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

# Attributes every LogRecord has: what is left are the `extra=` fields of the call.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
    "request",  # Django's request object: its repr holds the path
    "server_time",
}


def request_id_from(header: str | None) -> str:
    if header and _SANE_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (empty outside a request)."""

    def filter(self, record):
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


def route_name(request) -> str:
    """The URL pattern's name (`recovery:reset_link`), never the path, which may hold a token."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or "unnamed"
    from django.conf import settings

    if request.path.startswith(settings.STATIC_URL):
        return "static"
    return "unmatched"


class DjangoRequestFilter(logging.Filter):
    """django.request logs « Not Found: <path> » and keeps the request: both may hold a token."""

    def filter(self, record):
        request = getattr(record, "request", None)
        if request is not None and isinstance(record.args, tuple) and len(record.args) == 2:
            record.args = (record.args[0], route_name(request))
        record.request = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then the extra fields."""

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Development: readable lines, the request's fields appended as key=value."""

    def format(self, record):
        line = super().format(record)
        extra = {
            key: value
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
        }
        if extra:
            line += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        return line


def logging_config(*, json_lines: bool, level: str) -> dict:
    """settings.LOGGING: JSON lines (production) or plain text (development) on stderr."""
    formatter = (
        {"()": "portail.ops.logs.JsonFormatter"}
        if json_lines
        else {
            "()": "portail.ops.logs.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "portail.ops.logs.RequestIdFilter"},
            "django_request": {"()": "portail.ops.logs.DjangoRequestFilter"},
        },
        "formatters": {"portail": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "portail",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"level": "WARNING", "filters": ["django_request"]},
            # Django's own server logs each request with its path (a reset link's token): the
            # request line of RequestLogMiddleware replaces it.
            "django.server": {"level": "WARNING"},
        },
    }
