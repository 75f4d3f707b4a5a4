"""Audit retention (PORTAIL_AUDIT_RETENTION_DAYS) by whole months; monthly partitions on PostgreSQL."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from portail.audit import partitions
from portail.audit.models import Event
from portail.audit.services import record

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are PostgreSQL's"
)


def months_ago(n, day=15):
    today = timezone.now().date()
    month = partitions.month_start(today)
    for _ in range(n):
        month = (month - datetime.timedelta(days=1)).replace(day=1)
    return datetime.datetime(month.year, month.month, day, 12, tzinfo=datetime.UTC)


def event_at(at, tag="account.login"):
    if partitions.is_partitioned():
        # The months a running portal would have had (purge-audit prepares them ahead).
        with connection.cursor() as cursor:
            partitions.ensure_months(cursor, at.date(), at.date())
    return Event.objects.create(tag=tag, at=at)


def purge(*args):
    out = io.StringIO()
    call_command("purge_audit", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_purge_removes_the_months_older_than_retention_and_keeps_the_rest(settings):
    settings.PORTAIL_AUDIT_RETENTION_DAYS = 365
    very_old = event_at(months_ago(15))
    just_old = event_at(months_ago(13))
    kept_edge = event_at(months_ago(11, day=1))  # within a year: kept
    recent = record("account.login")

    said = purge("--dry-run")
    assert "2 mois seraient supprimés" in said
    assert Event.objects.filter(pk=very_old.pk).exists()

    said = purge()
    assert "2 mois supprimés" in said
    remaining = set(Event.objects.values_list("pk", flat=True))
    assert very_old.pk not in remaining and just_old.pk not in remaining
    assert {kept_edge.pk, recent.pk} <= remaining
    # The purge is itself in the trail.
    purge_event = Event.objects.get(tag="audit.purge")
    assert purge_event.data["retention_days"] == 365 and len(purge_event.data["months"]) == 2


def test_a_shorter_retention_keeps_six_months(settings):
    settings.PORTAIL_AUDIT_RETENTION_DAYS = 183  # CNIL's lower bound: 6 months
    old = event_at(months_ago(8))
    kept = event_at(months_ago(5))
    purge()
    assert not Event.objects.filter(pk=old.pk).exists()
    assert Event.objects.filter(pk=kept.pk).exists()


def test_bad_settings_and_options_get_a_french_message(settings):
    settings.PORTAIL_AUDIT_RETENTION_DAYS = 0
    with pytest.raises(CommandError, match="PORTAIL_AUDIT_RETENTION_DAYS"):
        purge()
    settings.PORTAIL_AUDIT_RETENTION_DAYS = 365
    with pytest.raises(CommandError, match="entre 0 et 24"):
        purge("--ahead", "99")


@postgres_only
def test_postgres_log_is_partitioned_by_month_with_months_ahead_and_a_default():
    assert partitions.is_partitioned()
    purge("--ahead", "3")
    with connection.cursor() as cursor:
        months = partitions.existing_months(cursor)
        cursor.execute("SELECT to_regclass(%s)", [partitions.DEFAULT])
        assert cursor.fetchone()[0] is not None
    this_month = partitions.month_start(timezone.now())
    ahead = [this_month]
    for _ in range(3):
        ahead.append(partitions.next_month(ahead[-1]))
    assert set(ahead) <= set(months)
    # An event at a date no month was prepared for still enters the log (default partition).
    far = Event.objects.create(
        tag="account.login", at=datetime.datetime(2099, 1, 1, tzinfo=datetime.UTC)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT} WHERE id = %s", [far.pk])  # noqa: S608
        assert cursor.fetchone()[0] == 1


@postgres_only
def test_postgres_rows_stay_append_only_in_every_partition(settings):
    settings.PORTAIL_AUDIT_RETENTION_DAYS = 365
    old = event_at(months_ago(14))
    record("account.login")
    name = partitions.partition_name(partitions.month_start(old.at))
    for statement in (
        "UPDATE audit_event SET tag = 'x'",
        "DELETE FROM audit_event",
        f"DELETE FROM {name}",  # noqa: S608 (not through the parent either)
        f"UPDATE {name} SET tag = 'x'",  # noqa: S608
    ):
        with (
            pytest.raises(Exception, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    # Only retention removes events, by dropping the whole month.
    purge()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [name])
        assert cursor.fetchone()[0] is None
    assert Event.objects.filter(tag="account.login").count() == 1
