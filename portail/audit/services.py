"""record(): the one way an event enters the audit log."""

from portail.ops import metrics, statements

from .models import Event


def request_meta(request) -> dict:
    if request is None:
        return {"ip": None, "user_agent": ""}
    return {
        "ip": getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR"),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:512],
    }


def record(tag, *, request=None, target=None, actor=None, subject="", **data) -> Event:
    event = _event(tag, request, target, actor, subject, data)
    # A new row, never an update (append-only): the INSERT compiled once (ops.statements; every
    # login writes one).
    statements.insert(event)
    return event


def record_later(tag, *, request=None, target=None, actor=None, subject="", **data) -> Event:
    """record(), the row possibly written with the request's next write (ops.statements.later:
    a login's event goes in the session's INSERT on PostgreSQL); the event's id is then None."""
    event = _event(tag, request, target, actor, subject, data)
    statements.insert(event, deferred=True)
    return event


def _event(tag, request, target, actor, subject, data) -> Event:
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    metrics.audit_event(tag)  # portail_audit_events_total{tag}, portail_logins_total{outcome}
    return Event(
        tag=tag,
        target=target,
        actor=actor,
        # The account is named by its id only: once a leaver's personal data is erased
        # (arrêté du 30 novembre 2006, art. 6), the append-only trail keeps no name of his.
        # `subject` is for what was typed when no account matched.
        subject=subject if target is None else "",
        data=data,
        **request_meta(request),
    )
