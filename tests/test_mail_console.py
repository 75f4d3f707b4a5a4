"""« Courriels en échec » in the console: for regional administrators, masked, requeue audited."""

import pytest
from django.utils import timezone

from portail.audit.models import Event
from portail.directory.models import Function
from portail.mail.models import OutgoingMail
from portail.mail.services import deliver_due, send_template
from tests.conftest import enter_admin
from tests.console.conftest import enrol, staff, text
from tests.smtp import SMTPServer, point_django_at

pytestmark = pytest.mark.django_db(transaction=True)
PAGE = "/console/courriels"


@pytest.fixture
def region(client, db):
    admin = staff("regis.region", None, first_name="Régis", last_name="Région")
    Function.objects.create(user=admin, role=Function.Role.REGIONAL_ADMIN)
    enrol(admin)
    enter_admin(client, admin)
    return client


@pytest.fixture
def failed(settings):
    """A reset mail the relay refused for good (550), as the worker leaves it."""
    server = SMTPServer("refuse")
    server.start()
    point_django_at(settings, server)
    try:
        send_template(
            "password_reset",
            "jean.dupont@example.org",
            {
                "first_name": "Jean",
                "link": "https://ent.example.test/auth/reset/secret-token",
                "minutes": 60,
                "identifier": "jean.dupont",
            },
        )
        deliver_due()
    finally:
        server.stop()
    mail = OutgoingMail.objects.get()
    assert mail.status == OutgoingMail.Status.FAILED
    return mail


def test_regional_admin_sees_failed_mails_masked_without_body(region, failed):
    page = text(region.get(PAGE))
    assert "Courriels en échec" in page
    assert "j•••@e•••.org" in page and "jean.dupont@example.org" not in page
    assert failed.subject in page and "550" in page
    assert "secret-token" not in page
    assert "Courriels en échec" in text(region.get("/console/"))  # in the navigation


def test_renvoyer_is_confirmed_then_requeues_and_is_audited(region, failed, settings):
    confirm = text(region.get(f"{PAGE}?renvoyer={failed.pk}"))
    assert "Renvoyer ce courriel ?" in confirm
    assert OutgoingMail.objects.get().status == OutgoingMail.Status.FAILED  # a GET changes nothing
    response = region.post(PAGE, {"courriel": failed.pk})
    assert response.status_code == 302
    assert "remis dans la file" in text(region.get(PAGE))
    mail = OutgoingMail.objects.get()
    assert mail.status == OutgoingMail.Status.PENDING and mail.attempts == 0
    assert mail.next_attempt_at <= timezone.now()
    event = Event.objects.get(tag="console.mail.requeued")
    assert event.data == {"mail": failed.pk} and event.actor.identifier == "regis.region"
    server = SMTPServer()
    server.start()
    point_django_at(settings, server)
    try:
        assert deliver_due() == 1
        assert server.message_ids() == [failed.message_id]  # the same message, sent once
    finally:
        server.stop()


def test_bad_or_stale_requeue_gets_a_french_message_not_an_error(region, failed):
    for value in ("abc", "", "999999"):
        response = region.post(PAGE, {"courriel": value}, follow=True)
        assert response.status_code == 200
        assert "n'est plus en échec" in text(response)
    assert text(region.get(f"{PAGE}?renvoyer=abc")).count("Renvoyer ce courriel ?") == 0
    assert not Event.objects.filter(tag="console.mail.requeued").exists()


def test_a_school_referent_does_not_see_the_page(client, school, failed):
    user = staff("anne.martin", school)
    Function.objects.create(user=user, role=Function.Role.REFERENT, structure=school)
    enrol(user)
    enter_admin(client, user)
    assert client.get(PAGE).status_code == 404
    assert client.post(PAGE, {"courriel": failed.pk}).status_code == 404
    assert OutgoingMail.objects.get().status == OutgoingMail.Status.FAILED
