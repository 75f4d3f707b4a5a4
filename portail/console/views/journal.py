"""The audit journal of the référent's accounts, in plain French (see ..journal)."""

import datetime

from django.core.cache import cache
from django.db.models import prefetch_related_objects
from django.shortcuts import render
from django.utils import timezone

from portail.accounts.models import User
from portail.audit import queries as audit_queries
from portail.audit.models import Event
from portail.directory.models import is_regional_admin

from .. import scoping
from ..forms import AuditFilterForm
from ..journal import event_rows
from .access import PAGE_SIZE, console_view

# --- Audit log -------------------------------------------------------------------------------------


@console_view
def audit_log(request):
    # Region scale (issue 8 §5): a cursor instead of page numbers and a count, the actions from
    # the index; see portail/audit/queries.py.
    # A référent's accounts (a few thousand at most) are named, so their events are read through
    # the account index; a regional administrator's are nearly all events, read by date.
    by_target = not is_regional_admin(request.user)
    if by_target:
        ids = set(scoping.visible_accounts(request.user).values_list("pk", flat=True))
        events = audit_queries.of_accounts(ids)
    else:
        ids = None
        events = scoping.visible_events(request.user)
    tags = audit_queries.known_tags()
    if request.GET.get("tag") and request.GET["tag"] not in tags:
        cache.delete(audit_queries.TAGS_CACHE_KEY)  # an action recorded since the list was made
        tags = audit_queries.known_tags()
    form = AuditFilterForm(request.GET or None, tags=tags)
    since = until = None
    if form.is_valid():
        data = form.cleaned_data
        if data["account"]:
            # One account: its id, then its events through the account index.
            target = User.objects.filter(identifier=data["account"].strip()).first()
            if target is None or (ids is not None and target.pk not in ids):
                events = Event.objects.none()
            elif ids is not None:
                events = Event.objects.filter(target_id=target.pk)  # visible: checked above
            else:
                events = events.filter(target_id=target.pk)
            by_target = True
        if data["tag"]:
            events = events.filter(tag=data["tag"])
        tz = timezone.get_current_timezone()
        if data["since"]:
            since = datetime.datetime.combine(data["since"], datetime.time.min, tz)
            events = events.filter(at__gte=since)
        if data["until"]:
            until = datetime.datetime.combine(
                data["until"] + datetime.timedelta(days=1), datetime.time.min, tz
            )
            events = events.filter(at__lt=until)
    # The dates also bound the months that are read (partition pruning, fewer windows).
    page = audit_queries.page_of(
        events,
        request.GET.get("avant", ""),
        PAGE_SIZE,
        by_target=by_target,
        since=since,
        until=until,
    )
    # The accounts named on the page, in one query (a join would change the events' plan).
    prefetch_related_objects(page.events, "actor", "target")
    query = request.GET.copy()
    query.pop("avant", None)
    n = len(page.events)
    return render(
        request,
        "console/audit.html",
        {
            "form": form,
            "page": page,
            "rows": event_rows(page.events),
            "caption": f"{n} événement{'s' if n > 1 else ''}"
            + (" sur cette page" if page.next_cursor or not page.first else ""),
            "query": query.urlencode(),
        },
    )
