"""The mail queue against real relays that accept, refuse, defer, hang, or acknowledge late.

Relays are aiosmtpd servers (tests/smtp.py) and a socket that never answers; the database is the
test's own (SQLite or PostgreSQL). Tests that need row locks, NOTIFY or a connection cut by
pg_terminate_backend run on PostgreSQL only.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from portail.mail.models import OutgoingMail
from portail.mail.queue import Worker, queue_stats
from portail.mail.services import deliver_due, send_template
from tests.smtp import HangingServer, SMTPServer, point_django_at

pytestmark = pytest.mark.django_db(transaction=True)
postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="row locks, NOTIFY and backend kills"
)
Status = OutgoingMail.Status


@pytest.fixture
def template_dir(tmp_path, settings):
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "hello.subject.txt").write_text("Bonjour {{ name }}\n")
    (folder / "hello.txt").write_text("Bonjour {{ name }}, votre lien : {{ link }}\n")
    (folder / "hello.html").write_text("<p>Bonjour {{ name }}</p>\n")
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    return folder


def _server(settings, behaviour="accept", **kwargs):
    server = SMTPServer(behaviour, **kwargs)
    server.start()
    point_django_at(settings, server)
    return server


@pytest.fixture
def relay(settings):
    server = _server(settings)
    yield server
    server.stop()


@pytest.fixture
def hanging(settings):
    server = HangingServer()
    server.start()
    point_django_at(settings, server)
    settings.EMAIL_TIMEOUT = 1
    yield server
    server.stop()


def queue(count, **context):
    return [
        send_template("hello", f"eleve{i}@example.org", {"name": f"n{i}", **context})
        for i in range(count)
    ]


def make_due():
    OutgoingMail.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def wait_until(condition, seconds=60):
    """Wait for something that must happen (bounded so a broken run ends); not a timing check."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- The request enqueues; only workers talk to the relay ---------------------------------------


def test_a_web_request_does_not_wait_on_a_hanging_relay(client, active_user, hanging):
    response = client.post("/auth/lost-password", {"identifier": "jean.dupont"})
    assert response.status_code in (200, 302)
    # Returned while the relay hangs: the request never even connected to it.
    assert hanging.connections == []
    mail = OutgoingMail.objects.get()
    assert mail.status == Status.PENDING and mail.attempts == 0


def test_a_hanging_relay_costs_a_worker_one_short_timeout_and_the_mail_waits(template_dir, hanging):
    queue(3)
    assert deliver_due() == 0
    assert len(hanging.connections) == 1  # one connect attempt for the batch, not one per mail
    rows = list(OutgoingMail.objects.all())
    assert all(m.status == Status.PENDING and m.attempts == 1 for m in rows)
    assert all("timed out" in m.last_error.lower() for m in rows), rows[0].last_error
    assert all(m.next_attempt_at > timezone.now() for m in rows)  # backoff
    assert all(m.reserved_by == "" and m.reserved_until is None for m in rows)


def test_message_id_is_chosen_at_enqueue_and_sent(template_dir, relay):
    [pk] = queue(1)
    stored = OutgoingMail.objects.get(pk=pk).message_id
    assert stored.startswith("<") and stored.endswith("@ent.local>")
    assert deliver_due() == 1
    assert relay.message_ids() == [stored]
    assert OutgoingMail.objects.get(pk=pk).status == Status.SENT


def test_a_batch_goes_over_one_smtp_connection(template_dir, relay, settings):
    settings.PORTAIL_MAIL_BATCH_SIZE = 25
    queue(20)
    assert deliver_due() == 20
    assert len(relay.peers()) == 1  # one client port: no reconnect per mail
    assert len(set(relay.message_ids())) == 20


def test_a_late_acknowledgement_resends_the_same_message(template_dir, settings):
    settings.EMAIL_TIMEOUT = 1
    server = _server(settings, "late", late_seconds=3)
    try:
        [pk] = queue(1)
        assert deliver_due() == 0  # the 250 came after our timeout
        first = OutgoingMail.objects.get(pk=pk)
        assert first.status == Status.PENDING and "timed out" in first.last_error.lower()
        server.behaviour = "accept"
        make_due()
        assert deliver_due() == 1
        # The relay has it twice, as one and the same message: the receiver can tell.
        assert server.message_ids() == [first.message_id, first.message_id]
        assert OutgoingMail.objects.get(pk=pk).status == Status.SENT
    finally:
        server.stop()


def test_a_relay_that_stops_answering_is_not_waited_on_for_each_mail(template_dir, settings):
    settings.EMAIL_TIMEOUT = 1
    server = _server(settings, "late", late_seconds=5)
    try:
        queue(3)
        assert deliver_due() == 0
        assert len(server.message_ids()) == 1  # one timeout for the batch, not one per mail
        rows = list(OutgoingMail.objects.all())
        assert all(m.status == Status.PENDING and m.attempts == 1 for m in rows)
    finally:
        server.stop()


def test_a_4xx_answer_is_retried_later(template_dir, settings):
    server = _server(settings, "defer")
    try:
        [pk] = queue(1)
        assert deliver_due() == 0
        mail = OutgoingMail.objects.get(pk=pk)
        assert mail.status == Status.PENDING and "451" in mail.last_error
        assert "eleve0@example.org" not in mail.last_error  # errors name no recipient
        server.behaviour = "accept"
        make_due()
        assert deliver_due() == 1
    finally:
        server.stop()


# --- Nothing given up silently --------------------------------------------------------------------


def failed_mail(settings):
    server = _server(settings, "refuse")
    try:
        [pk] = queue(1, link="https://ent.example.test/auth/reset/secret-token")
        assert deliver_due() == 0
    finally:
        server.stop()
    return OutgoingMail.objects.get(pk=pk)


def test_a_5xx_answer_fails_the_mail_at_once_and_status_shows_it(template_dir, settings, capsys):
    mail = failed_mail(settings)
    assert mail.status == Status.FAILED and mail.attempts == 1  # RFC 5321: 5yz is permanent
    assert "550" in mail.last_error
    call_command("send_mail", "--status")
    out = capsys.readouterr().out
    assert "en échec : 1" in out
    assert f"échec n° {mail.pk} — e•••@e•••.org — Bonjour n0" in out and "550" in out
    assert "secret-token" not in out and "eleve0@example.org" not in out  # no body, masked


def test_after_the_retry_budget_the_mail_stays_visible_and_counted(template_dir, settings, hanging):
    settings.PORTAIL_MAIL_MAX_ATTEMPTS = 2
    queue(1)
    deliver_due()
    make_due()
    deliver_due()
    assert OutgoingMail.objects.get().status == Status.FAILED
    assert queue_stats()["failed"] == 1
    assert REGISTRY.get_sample_value("portail_mail_queue_depth", {"state": "failed"}) == 1
    assert REGISTRY.get_sample_value("portail_mail_queue_depth", {"state": "pending"}) == 0


def test_requeue_failed_command_sends_them_again(template_dir, settings, capsys):
    failed = failed_mail(settings)
    call_command("send_mail", "--requeue-failed")
    assert "1 courriel(s) remis dans la file" in capsys.readouterr().out
    mail = OutgoingMail.objects.get(pk=failed.pk)
    assert mail.status == Status.PENDING and mail.attempts == 0
    server = _server(settings)
    try:
        assert deliver_due() == 1
        assert server.message_ids() == [failed.message_id]
    finally:
        server.stop()
    from portail.audit.models import Event

    assert Event.objects.filter(tag="mail.requeued").count() == 1


def test_metrics_show_depth_and_oldest_pending_age(template_dir, settings):
    settings.PORTAIL_MAIL_DELIVER_ON_COMMIT = False
    queue(3)
    OutgoingMail.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    assert REGISTRY.get_sample_value("portail_mail_queue_depth", {"state": "pending"}) == 3
    assert REGISTRY.get_sample_value("portail_mail_oldest_pending_age_seconds") >= 600


# --- Several workers, and a worker that survives ---------------------------------------------------


def _run(worker):
    thread = threading.Thread(target=worker.run, kwargs={"loop": True}, daemon=True)
    thread.start()
    return thread


@postgres_only
def test_two_workers_send_each_of_40_mails_exactly_once(template_dir, relay, settings):
    settings.PORTAIL_MAIL_DELIVER_ON_COMMIT = False  # both workers find them by polling at once
    queue(40)
    workers = [Worker(batch_size=4, poll_seconds=1, name=f"w{i}") for i in range(2)]
    threads = [_run(w) for w in workers]
    try:
        assert wait_until(lambda: len(relay.message_ids()) >= 40)
        assert wait_until(
            lambda: OutgoingMail.objects.filter(status=Status.SENT).count() == 40, seconds=10
        )
    finally:
        for w in workers:
            w.stop()
        for t in threads:
            t.join(10)
    ids = relay.message_ids()
    assert len(ids) == 40 and len(set(ids)) == 40  # each received exactly once
    assert set(ids) == set(OutgoingMail.objects.values_list("message_id", flat=True))


@postgres_only
def test_a_worker_is_woken_by_the_commit_not_by_polling(template_dir, relay):
    worker = Worker(poll_seconds=600)  # polling alone would not send anything in this test
    thread = _run(worker)
    try:
        assert wait_until(lambda: worker._listener is not None)
        queue(1)
        assert wait_until(lambda: len(relay.message_ids()) == 1)
    finally:
        worker.stop()
        from portail.mail.queue import wake_workers

        wake_workers()
        thread.join(10)
    assert not thread.is_alive()


@postgres_only
def test_a_worker_whose_database_connection_is_cut_keeps_going(template_dir, relay, caplog):
    worker = Worker(poll_seconds=1)
    thread = _run(worker)
    try:
        queue(3)
        assert wait_until(lambda: len(relay.message_ids()) == 3)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        queue(3)
        assert wait_until(lambda: len(relay.message_ids()) == 6)
        assert thread.is_alive()
    finally:
        worker.stop()
        thread.join(10)
    assert any("mail worker" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert OutgoingMail.objects.filter(status=Status.SENT).count() == 6


def test_an_expired_lease_gives_the_mail_to_another_worker(template_dir, relay):
    from portail.mail.queue import reserve

    queue(1)
    token, [mail] = reserve("dead-worker", 10)
    assert reserve("other", 10)[1] == []  # leased: nobody else takes it
    assert deliver_due() == 0
    OutgoingMail.objects.update(reserved_until=timezone.now() - timedelta(seconds=1))
    assert deliver_due() == 1
    assert OutgoingMail.objects.get().attempts == 2  # the dead worker's attempt counted


@postgres_only
def test_the_send_mail_loop_process_sends_on_notify_and_stops_on_sigterm(template_dir, relay):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    db = connection.settings_dict
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "EMAIL_URL": f"smtp://{relay.host}:{relay.port}",
        "PORTAIL_MAIL_POLL_SECONDS": "600",  # only NOTIFY can wake it within this test
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "portail", "send-mail", "--loop"],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_until(
            lambda: any(
                "LISTEN" in q
                for (q,) in connection.cursor().execute(
                    "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                )
            )
        )
        queue(2)
        assert wait_until(lambda: len(relay.message_ids()) == 2)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            out, err = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
    assert worker.returncode == 0, err.decode()
    assert "Envoi des courriels en continu" in out.decode()
    assert OutgoingMail.objects.filter(status=Status.SENT).count() == 2


def test_deliver_now_false_only_queues_even_with_a_local_backend(template_dir, settings):
    from django.core import mail as django_mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send_template("hello", "a@example.org", {"name": "Nina"}, deliver_now=False)
    assert django_mail.outbox == [] and OutgoingMail.objects.get().attempts == 0
    assert deliver_due() == 1  # the worker's pass sends it
    sent = django_mail.outbox[0].message()
    assert sent["Message-ID"] == OutgoingMail.objects.get().message_id


def _sent_surviving_the_cut(pk):
    from django.db import OperationalError

    try:
        return OutgoingMail.objects.filter(pk=pk, status=Status.SENT).exists()
    except OperationalError:  # our own connection was cut too: the next look reconnects
        connection.close()
        return False


@postgres_only
def test_a_mail_acknowledged_while_the_database_is_cut_is_marked_sent_not_resent(
    template_dir, relay, settings
):
    import psycopg

    settings.PORTAIL_MAIL_DELIVER_ON_COMMIT = False
    [pk] = queue(1)
    db = connection.settings_dict
    dsn = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    connection.close()  # only the worker's connections are open when the cut comes

    def cut_the_database():  # in the relay, after the DATA, before its 250
        relay.on_data(None)
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    relay.on_data(cut_the_database)
    worker = Worker(poll_seconds=1)
    thread = _run(worker)
    try:
        assert wait_until(lambda: _sent_surviving_the_cut(pk))
    finally:
        worker.stop()
        thread.join(10)
    mail = OutgoingMail.objects.get(pk=pk)
    assert mail.attempts == 1 and relay.message_ids() == [mail.message_id]  # sent once


# --- Retention -------------------------------------------------------------------------------------


def test_purge_mail_deletes_old_sent_and_failed_rows_and_keeps_pending(
    template_dir, settings, capsys
):
    from portail.audit.models import Event

    settings.PORTAIL_MAIL_DELIVER_ON_COMMIT = False
    settings.PORTAIL_MAIL_RETENTION_DAYS = 30
    old, recent, old_failed, old_pending = queue(4)
    long_ago = timezone.now() - timedelta(days=31)
    OutgoingMail.objects.filter(pk=old).update(status=Status.SENT, sent_at=long_ago)
    OutgoingMail.objects.filter(pk=recent).update(status=Status.SENT, sent_at=timezone.now())
    OutgoingMail.objects.filter(pk=old_failed).update(status=Status.FAILED, created_at=long_ago)
    OutgoingMail.objects.filter(pk=old_pending).update(created_at=long_ago)

    call_command("purge_mail", "--dry-run")
    assert "seraient supprimés : 1 envoyé(s), 1 en échec" in capsys.readouterr().out
    assert OutgoingMail.objects.count() == 4

    call_command("purge_mail")
    assert "supprimés : 1 envoyé(s), 1 en échec" in capsys.readouterr().out
    assert set(OutgoingMail.objects.values_list("pk", flat=True)) == {recent, old_pending}
    event = Event.objects.get(tag="mail.purged")
    assert event.data["sent"] == 1 and event.data["failed"] == 1


def test_every_scheduled_job_of_deploy_is_a_portail_command():
    from pathlib import Path

    from django.core.management import get_commands

    timers = sorted(Path(__file__).parent.parent.glob("deploy/systemd/*.timer"))
    jobs = [t.read_text().split("Unit=portail-job@")[1].split(".service")[0] for t in timers]
    assert "purge-mail" in jobs and "purge-audit" in jobs
    for job in jobs:
        assert job.replace("-", "_") in get_commands() or job in get_commands(), job
