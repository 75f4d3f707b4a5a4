"""Reading the audit log at a region's scale (tens of millions of events) in bounded time.

- Pages by cursor, never by offset or COUNT(*): a page is the next `size` events before the last
  one shown, in (at, id) order (models.Event.Meta.indexes).
- A page is looked for in windows of whole months, newest first (this month, the one before, the
  two before, four, ...) until it is full: each query then reads a few monthly partitions
  (PostgreSQL prunes the others). A référent's school of 500
  accounts has ~4,000 events a month at a region's rate; the query reads those through the
  (target, tag, at) index instead of the whole year's.
- A school's page is chosen in the database: the window's events of its accounts (one array
  parameter, read through the account index, materialized so that the planner cannot walk the
  region's month by date instead), then the newest `need` by a top-N sort. A lycée with its
  parents (5,000 accounts, ~40,000 events a month) sends 51 rows to Python, not 40,000.
- Date filters bound the windows: the first starts at the month of the upper date, the walk
  stops at the lower one (the other months are not even asked for).
- The filter's list of actions comes from a skip scan of the (tag, at, id) index (one probe per
  distinct tag and partition), cached, not from a DISTINCT over the whole table.
"""

import datetime
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from . import partitions
from .models import Event

TAGS_CACHE_KEY = "audit:tags"
TAGS_CACHE_SECONDS = 600


@dataclass
class Page:
    events: list
    next_cursor: str  # "" on the last page
    first: bool  # no cursor: the newest events


def cursor_of(event) -> str:
    return f"{event.at.isoformat()}~{event.pk}"


def parse_cursor(value: str):
    """(at, id) from a cursor; None for anything else (a hand-edited URL gets the first page)."""
    try:
        at, pk = (value or "").split("~")
        at = datetime.datetime.fromisoformat(at)
        pk = int(pk)
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    return at, pk


def _utc(month):
    return datetime.datetime(month.year, month.month, 1, tzinfo=datetime.UTC)


def of_accounts(ids) -> "models.QuerySet":
    """The events of the accounts `ids` (a school's: thousands). On PostgreSQL one array
    parameter (`= ANY`), not one placeholder per account."""
    ids = sorted(ids)
    if connection.vendor == "postgresql":
        return Event.objects.filter(
            RawSQL('"audit_event"."target_id" = ANY(%s::bigint[])', (ids,), BooleanField())
        )
    return Event.objects.filter(target_id__in=ids)


_TOP_KEYS = (
    "WITH w(at, id) AS MATERIALIZED ({}) SELECT at, id FROM w ORDER BY at DESC, id DESC LIMIT %s"
)


def _newest_keys(window, need: int) -> list:
    keys = window.order_by().values_list("at", "id")
    if connection.vendor != "postgresql":
        return sorted(keys, reverse=True)[:need]
    # MATERIALIZED: the window's rows are found first, by the WHERE alone (the account index);
    # only then sorted, in the database (top-N heapsort), and `need` of them leave it.
    try:
        sql, params = keys.query.sql_with_params()
    except EmptyResultSet:  # .none(): an account the actor may not see
        return []
    with connection.cursor() as cursor:
        cursor.execute(_TOP_KEYS.format(sql), [*params, need])
        return cursor.fetchall()


def _newest(window, need: int, by_target: bool) -> list:
    if not by_target:
        return list(window[:need])
    # The (at, id) of the window's events come from the (target, tag, at, id) index alone, with
    # no ORDER BY ... LIMIT that could tempt the planner into walking the whole region's month
    # by date; the newest `need` are then read whole, by primary key.
    keys = _newest_keys(window, need)
    if not keys:
        return []
    # By primary key alone (id, at): the rows were chosen, their filters need no second check.
    return list(
        Event.objects.filter(
            id__in=[pk for _, pk in keys], at__gte=keys[-1][0], at__lte=keys[0][0]
        ).order_by("-at", "-id")
    )


def page_of(
    events,
    cursor: str = "",
    size: int = 50,
    *,
    by_target: bool = False,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
) -> Page:
    """`size` events of the queryset `events`, newest first, after `cursor` (see module doc).

    `by_target`: `events` is filtered on a list of accounts (a référent's school): each window is
    read through their index (see _newest), whatever the planner's statistics.
    `since` / `until`: the date filter already applied to `events` (at >= since, at < until),
    repeated here so that the windows start and stop at its months.
    """
    position = parse_cursor(cursor)
    events = events.order_by("-at", "-id")
    if position is not None:
        at, pk = position
        events = events.filter(Q(at__lt=at) | Q(at=at, id__lt=pk), at__lte=at)
    oldest = Event.objects.order_by("at").values_list("at", flat=True).first()
    if oldest is not None and since is not None:
        oldest = max(oldest, since)
    rows = []
    if oldest is not None:
        # The newest window has no upper bound (a clock set ahead stays visible), unless the
        # filter or the cursor gives one.
        start = timezone.now()
        if position is not None:
            start = position[0]
        if until is not None:
            start = min(start, until - datetime.timedelta(microseconds=1))
        low = partitions.month_start(start.astimezone(datetime.UTC))
        window = events.filter(at__gte=_utc(low))
        span = 1
        while True:
            rows += _newest(window, size + 1 - len(rows), by_target)
            if len(rows) > size or _utc(low) <= oldest:
                break
            # Sparse results (one account, a rare action): each window twice as long as the
            # last, so a year takes at most five queries.
            high = low
            for _ in range(span):
                low = partitions.previous_month(low)
            span *= 2
            window = events.filter(at__gte=_utc(low), at__lt=_utc(high))
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, cursor_of(rows[-1]) if more else "", position is None)


_DISTINCT_TAGS = """
WITH RECURSIVE tags(tag) AS (
    (SELECT tag FROM audit_event ORDER BY tag LIMIT 1)
    UNION ALL
    SELECT (SELECT e.tag FROM audit_event e WHERE e.tag > tags.tag ORDER BY e.tag LIMIT 1)
    FROM tags WHERE tags.tag IS NOT NULL
)
SELECT tag FROM tags WHERE tag IS NOT NULL
"""


def known_tags() -> list[str]:
    """Every action ever recorded (the tags are code constants: listing them reveals nothing)."""
    tags = cache.get(TAGS_CACHE_KEY)
    if tags is None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(_DISTINCT_TAGS)
                tags = [tag for (tag,) in cursor.fetchall()]
        else:
            tags = sorted(Event.objects.values_list("tag", flat=True).distinct())
        cache.set(TAGS_CACHE_KEY, tags, TAGS_CACHE_SECONDS)
    return tags
