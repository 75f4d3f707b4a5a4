"""A leaver past the grace period (deactivated) recovers nothing: no mail, no link, no reminder."""

import pytest
from django.utils import timezone

from portail.accounts.models import Token
from portail.mail.models import OutgoingMail
from portail.recovery import services
from tests.helpers import text

pytestmark = pytest.mark.django_db
DEACTIVATED = "a été désactivé"


@pytest.fixture
def leaver(active_user):
    active_user.deactivated_at = timezone.now()
    active_user.save()
    return active_user


def test_lost_password_sends_nothing_to_a_deactivated_account(client, leaver):
    page = text(client.post("/auth/lost-password", {"identifier": "jean.dupont"}, follow=True))
    assert DEACTIVATED in page
    assert not OutgoingMail.objects.exists()
    assert not Token.objects.filter(user=leaver, purpose=Token.Purpose.RESET).exists()


def test_a_link_sent_before_deactivation_dies_with_it(client, active_user):
    client.post("/auth/lost-password", {"identifier": "jean.dupont"})
    link = OutgoingMail.objects.get().text.split("/auth/reset/")[1].split()[0]
    active_user.deactivated_at = timezone.now()
    active_user.save()
    page = text(client.get(f"/auth/reset/{link}"))
    assert services.TokenInvalid.message in page


def test_deactivated_accounts_get_no_identifier_reminder(client, leaver):
    page = text(client.post("/auth/lost-identifier", {"email": leaver.email}, follow=True))
    assert services.UnknownEmail.message in page
    assert not OutgoingMail.objects.exists()
