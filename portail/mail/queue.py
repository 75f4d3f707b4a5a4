"""The mail queue: reservation with a lease, delivery in batches, the worker that survives.

Reservation. A worker takes up to PORTAIL_MAIL_BATCH_SIZE due mails at once: on PostgreSQL with
`SELECT … FOR UPDATE SKIP LOCKED` (workers on any number of nodes pick disjoint rows without
waiting on each other), on SQLite with one `UPDATE … WHERE id IN (SELECT … LIMIT n)` statement
(SQLite has a single writer, so that statement is the lock). The rows get the worker's lease token
(`reserved_by`) and `reserved_until`; every later write is conditioned on that token, and a worker
that died gives its mails back when the lease expires. The attempt is counted at reservation, so a
mail that kills its worker still spends its budget.

At least once, the same message. Each mail has a Message-ID chosen at enqueue and set on every
attempt. Acknowledged mails (250 to DATA) are marked sent in groups of ACK_GROUP and at the end of each
batch; if the database is unreachable then, the worker keeps the acknowledgements in memory and
writes them before reserving anything else. What remains — a relay that acknowledges after our
timeout, a worker killed between the 250 and its UPDATE — is a resend of the very same message
(same Message-ID), never a different one.

Waking the workers. A web request never talks to the SMTP relay: `send_template` issues
`NOTIFY portail_mail` inside the caller's transaction (PostgreSQL delivers it at commit, and only
if the transaction commits), and `portail send-mail --loop` waits on `LISTEN portail_mail` on a
connection of its own, with polling every PORTAIL_MAIL_POLL_SECONDS as the fallback (SQLite, a lost
listener connection, a notification missed while a batch was being sent). We chose NOTIFY over a
background thread in the web process: the relay is then reached only by workers, a hanging relay
costs a web worker nothing, and no thread outlives a request inside gunicorn. A *local* backend
(the dev mailbox of `make run`, Django's locmem in tests) has no relay and no worker running: it
is delivered in-process once the transaction commits, as before.

Errors. Relay errors are per mail: 5yz answers (RFC 5321 §4.2.1, permanent) fail the mail at once,
anything else is retried with backoff until PORTAIL_MAIL_MAX_ATTEMPTS; then the mail stays visible
as failed (`portail send-mail --status`, the console, the metrics) until requeued. Database errors
(connection closed or refused) close the connection; the loop backs off and goes on, never exits.
"""

import contextlib
import logging
import os
import smtplib
import socket
import threading
import time
import uuid
from datetime import timedelta
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import connection, connections, transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from portail.security import sealing

from . import metrics
from .models import OutgoingMail

log = logging.getLogger("portail.mail.queue")

CHANNEL = "portail_mail"
# Acknowledged mails written as sent in one UPDATE: a worker killed in between resends at most
# these few, each under the Message-ID it had the first time.
ACK_GROUP = 10
SEAL_PURPOSE = "mail.body"
Status = OutgoingMail.Status


# --- Enqueue side ------------------------------------------------------------------------------


def new_message_id() -> str:
    """<random@domain of the sender>: no getfqdn() (slow), nothing about the recipient."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "portail.local"
    return make_msgid(idstring=uuid.uuid4().hex[:12], domain=domain)


def is_local_backend() -> bool:
    """True when the email backend is not an SMTP relay (dev mailbox, locmem, console, file)."""
    return not issubclass(import_string(settings.EMAIL_BACKEND), SMTPBackend)


def wake_workers(using: str = "default") -> None:
    """NOTIFY the `send-mail --loop` workers; inside a transaction it is sent at its commit."""
    conn = connections[using]
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")


# --- Reservation -------------------------------------------------------------------------------


def _due(now) -> Q:
    free = Q(reserved_until__isnull=True) | Q(reserved_until__lt=now)
    return Q(status=Status.PENDING, next_attempt_at__lte=now) & free


def reserve(worker: str, limit: int, ids=None) -> tuple[str, list[OutgoingMail]]:
    """Lease up to `limit` due mails (among `ids` if given) to a new token; returns them."""
    token = f"{worker}/{uuid.uuid4().hex[:10]}"[-80:]
    now = timezone.now()
    lease = {
        "reserved_by": token,
        "reserved_until": now + timedelta(seconds=settings.PORTAIL_MAIL_LEASE_SECONDS),
        "attempts": F("attempts") + 1,
    }
    due = OutgoingMail.objects.filter(_due(now))
    if ids is not None:
        due = due.filter(pk__in=list(ids))
    due = due.order_by("next_attempt_at", "pk")
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            _asynchronous_commit()
            picked = list(
                due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit]
            )
            if picked:
                OutgoingMail.objects.filter(pk__in=picked).update(**lease)
    else:  # SQLite: one statement, under the database's single write lock
        OutgoingMail.objects.filter(pk__in=due.values("pk")[:limit]).update(**lease)
    return token, list(OutgoingMail.objects.filter(reserved_by=token).order_by("pk"))


# --- Delivery ----------------------------------------------------------------------------------


def build_message(mail: OutgoingMail, backend) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        mail.subject,
        sealing.unseal(SEAL_PURPOSE, mail.sealed_text),
        settings.DEFAULT_FROM_EMAIL,
        [mail.to],
        connection=backend,
        headers={"Message-ID": mail.message_id},
    )
    if html := sealing.unseal(SEAL_PURPOSE, mail.sealed_html):
        message.attach_alternative(html, "text/html")
    return message


def _is_permanent(exc: Exception) -> bool:
    """RFC 5321 §4.2.1: a 5yz reply is a permanent refusal; retrying it changes nothing."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPDataError):
        return exc.smtp_code >= 500
    return False


# The relay answered (4yz/5yz about this mail): the next mail may still go through.
_ANSWERS = (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused)


def _drop(backend) -> None:
    """Forget a connection after an error, without QUIT (the relay may be hanging)."""
    raw = getattr(backend, "connection", None)
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.close()
        backend.connection = None


class Batch:
    """Sends the mails of one reservation over one SMTP connection."""

    def __init__(self, token: str, mails: list[OutgoingMail], acknowledged: dict):
        self.token = token
        self.mails = mails
        self.acknowledged = acknowledged  # pk → token: DATA accepted, not yet written
        self.sent = 0

    def run(self) -> int:
        backend = get_connection(fail_silently=False)
        relay_down: Exception | None = None
        try:
            for mail in self.mails:
                if relay_down is not None:  # do not knock again on a relay that refused us
                    self._failed(mail, relay_down)
                    continue
                if not mail.message_id:  # queued before Message-IDs existed
                    mail.message_id = new_message_id()
                    OutgoingMail.objects.filter(pk=mail.pk).update(message_id=mail.message_id)
                try:
                    message = build_message(mail, backend)
                except Exception as exc:  # unreadable body (key rotated): keep it, retry later
                    self._failed(mail, exc)
                    continue
                try:
                    backend.open()  # once per batch: later calls see the open connection
                except Exception as exc:  # connect refused or timed out
                    _drop(backend)
                    relay_down = exc
                    self._failed(mail, exc)
                    continue
                try:
                    backend.send_messages([message])
                except Exception as exc:  # refused, timed out, disconnected
                    _drop(backend)
                    self._failed(mail, exc)
                    if not isinstance(exc, _ANSWERS):  # no answer in time: do not wait per mail
                        relay_down = exc
                    continue
                self._sent(mail)
        finally:
            try:
                backend.close()
            except Exception:  # QUIT to a relay that stopped answering
                _drop(backend)
        write_acknowledged(self.acknowledged)
        return self.sent

    def _sent(self, mail: OutgoingMail) -> None:
        self.acknowledged[mail.pk] = self.token
        metrics.SENT.inc()
        self.sent += 1
        if len(self.acknowledged) >= ACK_GROUP:
            write_acknowledged(self.acknowledged)

    def _failed(self, mail: OutgoingMail, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}".replace(mail.to, "<destinataire>")[:255]
        give_up = _is_permanent(exc) or mail.attempts >= settings.PORTAIL_MAIL_MAX_ATTEMPTS
        minutes = min(2 ** max(mail.attempts - 1, 0), settings.PORTAIL_MAIL_MAX_BACKOFF_MINUTES)
        log.warning(
            "mail %s not sent (attempt %s%s): %s",
            mail.pk,
            mail.attempts,
            ", given up" if give_up else "",
            error,
        )
        metrics.ERRORS.inc()
        if give_up:
            metrics.FAILED.inc()
        OutgoingMail.objects.filter(pk=mail.pk, reserved_by=self.token).update(
            status=Status.FAILED if give_up else Status.PENDING,
            last_error=error,
            next_attempt_at=timezone.now() + timedelta(minutes=minutes),
            reserved_by="",
            reserved_until=None,
        )


def _asynchronous_commit() -> None:
    """Inside a transaction on PostgreSQL: its commit does not wait for the WAL flush.

    PostgreSQL's "asynchronous commit" (docs, §28.4): a server crash may forget the last commits
    (up to 3 × wal_writer_delay), never half of one. What the queue writes this way — a lease, a
    "sent" mark — if forgotten, only means the same message is sent again: the at-least-once we
    accept anyway. It spares the worker a WAL flush per write where the server flushes them.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def write_acknowledged(acknowledged: dict) -> None:
    """Mark sent every mail whose DATA was acknowledged; a database error leaves them to retry."""
    if not acknowledged:
        return
    written = list(acknowledged)
    with transaction.atomic():
        _asynchronous_commit()
        OutgoingMail.objects.filter(pk__in=written).exclude(status=Status.SENT).update(
            status=Status.SENT,
            sent_at=timezone.now(),
            # Sent: the links in it are no business of ours any more.
            sealed_text="",
            sealed_html="",
            last_error="",
            reserved_by="",
            reserved_until=None,
        )
    for pk in written:
        del acknowledged[pk]


# --- The worker --------------------------------------------------------------------------------


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


def _close_database() -> None:
    with contextlib.suppress(Exception):  # already broken: Django forgets it anyway
        connection.close()


class Worker:
    """`portail send-mail [--loop]`. One per process or thread; any number per node."""

    def __init__(self, *, batch_size=None, poll_seconds=None, name=None):
        self.name = name or _worker_name()
        self.batch_size = batch_size or settings.PORTAIL_MAIL_BATCH_SIZE
        self.poll_seconds = (
            settings.PORTAIL_MAIL_POLL_SECONDS if poll_seconds is None else poll_seconds
        )
        self.acknowledged: dict[int, str] = {}
        self.stop_event = threading.Event()
        self._listener = None

    # One pass: everything due now.
    def drain(self, limit: int | None = None, ids=None) -> int:
        write_acknowledged(self.acknowledged)
        sent = taken = 0
        while (limit is None or taken < limit) and not self.stop_event.is_set():
            size = self.batch_size if limit is None else min(self.batch_size, limit - taken)
            token, mails = reserve(self.name, size, ids=ids)
            if not mails:
                break
            taken += len(mails)
            sent += Batch(token, mails, self.acknowledged).run()
        return sent

    def run(self, *, loop: bool = True) -> int:
        """Drain, then wait for a NOTIFY (or the poll delay); survive any error. Returns sent."""
        total, delay = 0, 1
        while not self.stop_event.is_set():
            try:
                self._listen()
                total += self.drain()
                delay = 1
            except Exception as exc:  # database gone, or a bug: log it, back off, go on
                log.error(
                    "mail worker %s: %s: %s (retry in %s s)",
                    self.name,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                metrics.WORKER_ERRORS.inc()
                _close_database()
                self._unlisten()
                if not loop:
                    raise
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30)
                continue
            if not loop:
                break
            self._wait()
        self._unlisten()
        _close_database()
        return total

    def stop(self) -> None:
        self.stop_event.set()

    # LISTEN on a connection of our own (PostgreSQL); elsewhere, polling.
    def _listen(self) -> None:
        if self._listener is not None or connection.vendor != "postgresql":
            return
        wrapper = connections.create_connection("default")
        wrapper.ensure_connection()
        wrapper.connection.autocommit = True
        wrapper.connection.execute(f"LISTEN {CHANNEL}")
        self._listener = wrapper

    def _unlisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):  # a dead listener: nothing to close cleanly
                self._listener.close()
            self._listener = None

    def _wait(self) -> None:
        if self._listener is None:
            self.stop_event.wait(self.poll_seconds)
            return
        deadline = time.monotonic() + self.poll_seconds
        try:
            # One-second slices: a stop (SIGTERM) is seen within a second, not after the poll.
            while not self.stop_event.is_set() and (left := deadline - time.monotonic()) > 0:
                raw = self._listener.connection
                if any(True for _ in raw.notifies(timeout=min(left, 1.0), stop_after=1)):
                    return
        except Exception as exc:  # listener connection lost: poll until it is back
            log.warning("mail worker %s: LISTEN lost (%s)", self.name, type(exc).__name__)
            self._unlisten()
            self.stop_event.wait(min(self.poll_seconds, 1))


# --- What operators see ------------------------------------------------------------------------


def queue_stats(*, with_sent: bool = False) -> dict:
    """Counts by state and the age of the oldest pending mail (seconds, None if none)."""
    now = timezone.now()
    sending = Q(status=Status.PENDING, reserved_until__gte=now)
    waiting = Q(status=Status.PENDING) & (
        Q(reserved_until__isnull=True) | Q(reserved_until__lt=now)
    )
    # Sent rows pile up: leave them out unless asked (the (status, …) index then does the work).
    rows = OutgoingMail.objects
    if not with_sent:
        rows = rows.filter(status__in=[Status.PENDING, Status.FAILED])
    stats = rows.aggregate(
        pending=Count("pk", filter=waiting),
        sending=Count("pk", filter=sending),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
        oldest=Min("created_at", filter=Q(status=Status.PENDING)),
        **({"sent": Count("pk", filter=Q(status=Status.SENT))} if with_sent else {}),
    )
    oldest = stats.pop("oldest")
    stats["oldest_pending_age"] = (now - oldest).total_seconds() if oldest else None
    return stats


def requeue_failed(ids=None) -> int:
    """Give failed mails a fresh budget; the workers are woken at commit."""
    failed = OutgoingMail.objects.filter(status=Status.FAILED)
    if ids is not None:
        failed = failed.filter(pk__in=list(ids))
    with transaction.atomic():
        count = failed.update(
            status=Status.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            reserved_by="",
            reserved_until=None,
        )
        if count:
            wake_workers()
    return count


def purge_old(days: int, *, dry_run: bool = False) -> dict[str, int]:
    """Delete sent mails older than `days` (by sending time) and failed ones older than `days`
    (by creation: their links died long ago); pending mails are never touched."""
    cutoff = timezone.now() - timedelta(days=days)
    doomed = {
        "sent": OutgoingMail.objects.filter(status=Status.SENT, sent_at__lt=cutoff),
        "failed": OutgoingMail.objects.filter(status=Status.FAILED, created_at__lt=cutoff),
    }
    if dry_run:
        return {state: rows.count() for state, rows in doomed.items()}
    with transaction.atomic():
        return {state: rows.delete()[0] for state, rows in doomed.items()}
