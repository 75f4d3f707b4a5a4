"""The console's journal pages by cursor (no COUNT(*), no OFFSET) and stays scoped."""

import datetime
import re

import pytest
from django.utils import timezone

from portail.audit.models import Event
from tests.conftest import enter_admin
from tests.console.conftest import referent, staff, text  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client, referent):  # noqa: F811
    from tests.console.conftest import enrol

    enrol(referent)
    enter_admin(client, referent)
    return client


def older_link(page):
    found = re.search(r'href="\?([^"]*avant=[^"]*)">Événements plus anciens', page)
    return found and found[1].replace("&amp;", "&")


def test_journal_walks_back_a_page_at_a_time_without_gaps_or_repeats(console, pending_pupil):
    pupil, _ = pending_pupil
    now = timezone.now()
    # Two events share each instant: the cursor must break ties by id.
    for i in range(60):
        at = now - datetime.timedelta(minutes=i)
        Event.objects.create(tag="account.login", target=pupil, at=at, data={"n": 2 * i})
        Event.objects.create(tag="account.login", target=pupil, at=at, data={"n": 2 * i + 1})
    query, pages = "", 0
    while True:
        page = text(console.get("/console/journal?" + query))
        pages += 1
        query = older_link(page)
        if not query:
            break
    assert pages == 3  # 50 + 50 + 20
    assert "20 événements sur cette page" in page and "Événements les plus récents" in page


def test_journal_pages_cover_every_event_once(console, pending_pupil):
    pupil, _ = pending_pupil
    now = timezone.now()
    ids = set()
    for i in range(60):
        at = now - datetime.timedelta(minutes=i // 2)  # ties on `at`
        ids.add(Event.objects.create(tag="account.login", target=pupil, at=at).pk)
    from portail.audit.queries import page_of
    from portail.console import scoping

    referent_user = console.session["_auth_user_id"]
    from portail.accounts.models import User

    events = scoping.visible_events(User.objects.get(pk=referent_user))
    got, cursor = [], ""
    while True:
        page = page_of(events, cursor, 25)
        got += [e.pk for e in page.events]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(got) == len(set(got)) and set(got) >= ids


def test_a_hand_edited_cursor_gives_the_first_page_not_an_error(console, pending_pupil):
    pupil, _ = pending_pupil
    Event.objects.create(tag="account.login", target=pupil)
    for bad in ("nimporte", "2026-13-45T00:00~1", "2026-01-01T00:00~x", "2026-01-01T00:00~1"):
        response = console.get("/console/journal", {"avant": bad})
        assert response.status_code == 200
        assert "Connexion" in text(response)


def test_journal_of_another_school_stays_hidden(console, school, pending_pupil):
    other = staff("zoe.ailleurs", None)
    Event.objects.create(tag="account.login", target=other)
    page = text(console.get("/console/journal"))
    assert "zoe.ailleurs" not in page
    # Named in the filter, still not shown; an unknown name shows nothing, not an error.
    other_page = text(console.get("/console/journal?account=zoe.ailleurs"))
    assert "Connexion</td>" not in other_page and "0 événement" in other_page
    assert "0 événement" in text(console.get("/console/journal?account=personne"))


@pytest.mark.parametrize("by_target", [False, True])
def test_pages_run_across_months_newest_first_and_end(pending_pupil, by_target):
    from portail.audit.queries import page_of

    pupil, _ = pending_pupil
    now = timezone.now()
    made = []
    for months in (0, 1, 2, 5, 9):  # gaps: some months have no event at all
        for k in range(3):
            at = now - datetime.timedelta(days=31 * months, minutes=k)
            made.append(Event.objects.create(tag="account.login", target=pupil, at=at))
    newest_first = [e.pk for e in sorted(made, key=lambda e: (e.at, e.pk), reverse=True)]
    got, cursor = [], ""
    while True:
        page = page_of(
            Event.objects.filter(target_id__in=[pupil.pk]), cursor, 4, by_target=by_target
        )
        got += [e.pk for e in page.events]
        cursor = page.next_cursor
        if not cursor:
            break
    assert got == newest_first


@pytest.mark.parametrize("by_target", [False, True])
def test_pages_within_dates_hold_exactly_the_events_between_them(pending_pupil, by_target):
    # The dates also choose the months read (page_of's since/until): none of the range's events
    # may be lost at a month's edge, none outside it shown.
    from portail.audit.queries import of_accounts, page_of

    pupil, _ = pending_pupil
    paris = timezone.get_current_timezone()
    now = timezone.now().astimezone(paris)
    first_of_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    until = first_of_month - datetime.timedelta(days=31)  # the 1st, in Paris, of a past month
    until = until.replace(day=1)
    since = until - datetime.timedelta(days=75)
    moments = [
        until - datetime.timedelta(minutes=30),  # the evening before, in UTC the month before
        until,  # excluded (at < until)
        until + datetime.timedelta(days=3),
        since,  # included (at >= since)
        since - datetime.timedelta(seconds=1),
        since + datetime.timedelta(days=40),
        now - datetime.timedelta(minutes=5),
    ]
    made = [Event.objects.create(tag="account.login", target=pupil, at=at) for at in moments]
    inside = [e for e in made if since <= e.at < until]
    expected = [e.pk for e in sorted(inside, key=lambda e: (e.at, e.pk), reverse=True)]
    events = of_accounts({pupil.pk}) if by_target else Event.objects.filter(target=pupil)
    events = events.filter(at__gte=since, at__lt=until)
    got, cursor = [], ""
    while True:
        page = page_of(events, cursor, 2, by_target=by_target, since=since, until=until)
        got += [e.pk for e in page.events]
        cursor = page.next_cursor
        if not cursor:
            break
    assert got == expected and len(expected) == 3


def test_events_of_accounts_are_theirs_only(pending_pupil, active_user):
    from portail.audit.queries import of_accounts

    pupil, _ = pending_pupil
    mine = Event.objects.create(tag="account.login", target=pupil)
    Event.objects.create(tag="account.login", target=active_user)
    Event.objects.create(tag="account.login.failed", subject="inconnu")
    assert list(of_accounts({pupil.pk})) == [mine]
    assert set(of_accounts({pupil.pk, active_user.pk})) == set(Event.objects.exclude(target=None))
    assert not of_accounts(set()).exists()
