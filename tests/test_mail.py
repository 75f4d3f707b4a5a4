import socket
from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from portail.mail.models import MailboxMessage, OutgoingMail
from portail.mail.services import deliver, deliver_due, send_template

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def template_dir(tmp_path, settings):
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "hello.subject.txt").write_text("Bonjour {{ name }}\n")
    (folder / "hello.txt").write_text(
        "Bonjour {{ name }}, voir {{ base_url }}/auth/login {{ link }}\n"
    )
    (folder / "hello.html").write_text("<p>Bonjour {{ name }}</p>\n")
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    return folder


def test_mail_is_queued_then_sent_after_commit(template_dir, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send_template("hello", "a@example.org", {"name": "Élodie"})
    row = OutgoingMail.objects.get()
    assert row.status == OutgoingMail.Status.SENT and row.attempts == 1
    assert mail.outbox[0].subject == "Bonjour Élodie"
    assert f"{settings.PORTAIL_BASE_URL}/auth/login" in mail.outbox[0].body
    assert mail.outbox[0].alternatives[0][1] == "text/html"


def test_plain_text_parts_are_not_html_escaped(template_dir, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send_template("hello", "a@example.org", {"name": "Siobhán O'Connor & <Fils>"})
    assert mail.outbox[0].subject == "Bonjour Siobhán O'Connor & <Fils>"
    assert "Bonjour Siobhán O'Connor & <Fils>, voir" in mail.outbox[0].body
    assert "O&#x27;Connor &amp; &lt;Fils&gt;" in mail.outbox[0].alternatives[0][0]


def test_smtp_failure_keeps_the_mail_and_a_later_run_sends_it(template_dir, settings):
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=closed_port(),
        EMAIL_TIMEOUT=2,
    ):
        send_template("hello", "a@example.org", {"name": "Lucas"})
        assert OutgoingMail.objects.get().attempts == 0  # the request never talks to the relay
        assert deliver_due() == 0  # the worker's pass
    row = OutgoingMail.objects.get()
    assert row.status == OutgoingMail.Status.PENDING and row.attempts == 1
    assert "ConnectionRefusedError" in row.last_error
    assert deliver_due() == 0  # backoff: not due yet
    OutgoingMail.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert deliver_due() == 1
    assert OutgoingMail.objects.get().status == OutgoingMail.Status.SENT
    assert not deliver(row.pk)  # never twice


def test_queued_bodies_are_sealed_at_rest_and_erased_once_sent(template_dir, settings):
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=closed_port(),
        EMAIL_TIMEOUT=2,
    ):
        send_template("hello", "a@example.org", {"name": "Zoé", "link": "Zoé-secret-token"})
    row = OutgoingMail.objects.values().get()
    assert row["status"] == "pending"
    assert "Zoé-secret-token" not in str(row)  # a dump of a pending mail shows no link
    OutgoingMail.objects.update(next_attempt_at=timezone.now())
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert deliver_due() == 1
    assert "Zoé-secret-token" in mail.outbox[0].body
    sent = OutgoingMail.objects.get()
    assert sent.sealed_text == "" and sent.sealed_html == ""


def test_mail_sealed_under_another_key_is_retried_not_sent_garbled(template_dir, settings):
    settings.PORTAIL_MAIL_DELIVER_ON_COMMIT = False
    send_template("hello", "a@example.org", {"name": "Léa"})
    settings.SECRET_KEY = "another-key-after-rotation-0123456789abcdefghij"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert deliver_due() == 0 and not mail.outbox
    assert "Unreadable" in OutgoingMail.objects.get().last_error


def test_gives_up_after_max_attempts(template_dir, settings):
    settings.PORTAIL_MAIL_MAX_ATTEMPTS = 1
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=closed_port(),
        EMAIL_TIMEOUT=2,
    ):
        send_template("hello", "a@example.org", {"name": "Inès"})
        deliver_due()
    assert OutgoingMail.objects.get().status == OutgoingMail.Status.FAILED


def test_dev_mailbox_lists_and_shows_messages_in_debug_only(template_dir, settings, client):
    settings.EMAIL_BACKEND = "portail.mail.backends.MailboxBackend"
    send_template("hello", "a@example.org", {"name": "Paul"})
    message = MailboxMessage.objects.get()
    assert message.subject == "Bonjour Paul"

    settings.DEBUG = True
    assert "Bonjour Paul" in client.get("/dev/mailbox/").content.decode()
    assert "Bonjour Paul" in client.get(f"/dev/mailbox/{message.pk}/").content.decode()
    settings.DEBUG = False
    assert client.get("/dev/mailbox/").status_code == 404
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert client.get("/dev/mailbox/").status_code == 404
