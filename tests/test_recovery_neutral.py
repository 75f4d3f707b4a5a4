"""The neutral mode does the same work whatever the account (issue 7 §3): the same database
statements in number and kind, and the mail queued, not delivered, inside the request.
Timing itself is measured by bench/recovery_timing.py (no timed assertion here)."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portail.accounts.models import State, User
from portail.mail.models import OutgoingMail
from tests.helpers import account

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def accounts(settings, school, pending_pupil):
    settings.PORTAIL_NEUTRAL_RECOVERY_MESSAGES = True
    settings.PORTAIL_MAIL_DELIVER_ON_COMMIT = True  # the neutral mode queues all the same
    account("jean.dupont", "Jean", "Dupont", "jean.dupont@example.org", [school])
    account("bob.bloque", "Bob", "Bloqué", "bob@example.org", [school], state=State.BLOCKED)
    return {
        "unknown": ("personne.inconnue", "personne@example.org"),
        "pending": (pending_pupil[0].identifier, "inconnu2@example.org"),
        "blocked": ("bob.bloque", "bob@example.org"),
        "active": ("jean.dupont", "jean.dupont@example.org"),
        "active, again": ("jean.dupont", "jean.dupont@example.org"),
    }


def _statements(url, data):
    with CaptureQueriesContext(connection) as queries:
        response = Client().post(url, data)
    assert response.status_code == 302
    return [q for q in queries if "django_session" not in q["sql"]]


def test_lost_password_makes_the_same_number_of_statements_in_every_case(accounts, smtp):
    counts = {
        case: len(_statements("/auth/lost-password", {"identifier": identifier}))
        for case, (identifier, _email) in accounts.items()
    }
    assert len(set(counts.values())) == 1, counts
    # The active account's link was queued, not delivered within the request.
    assert smtp.received == []
    assert OutgoingMail.objects.filter(status="pending").count() == 1


def test_lost_identifier_makes_the_same_number_of_statements_in_every_case(accounts, smtp):
    counts = {
        case: len(_statements("/auth/lost-identifier", {"email": email}))
        for case, (_identifier, email) in accounts.items()
        if case != "pending"
    }
    assert len(set(counts.values())) == 1, counts
    assert smtp.received == []
    assert OutgoingMail.objects.filter(status="pending").count() == 1  # queued, not delivered


def test_without_the_neutral_mode_a_sent_link_is_delivered_at_once(settings, smtp, school):
    settings.PORTAIL_NEUTRAL_RECOVERY_MESSAGES = False
    account("jean.dupont", "Jean", "Dupont", "jean.dupont@example.org", [school])
    Client().post("/auth/lost-password", {"identifier": "jean.dupont"})
    assert len(smtp.sent_to("jean.dupont@example.org")) == 1
    assert User.objects.count() >= 1
