import contextlib
import signal

from django.core.management.base import BaseCommand, CommandError

from portail.audit.services import record
from portail.mail.models import OutgoingMail
from portail.mail.queue import Worker, queue_stats, requeue_failed


class Command(BaseCommand):
    help = (
        "Send the queued emails that are due. --loop: keep going (woken by PostgreSQL NOTIFY, "
        "else polling), surviving database and relay errors; --status: the queue's state; "
        "--requeue-failed: give the failed emails a new chance."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--loop", action="store_true", help="run as a worker, never exit")
        group.add_argument("--status", action="store_true", help="counts, oldest age, failures")
        group.add_argument(
            "--requeue-failed", action="store_true", help="put the failed emails back in the queue"
        )

    def handle(self, *args, loop=False, status=False, requeue_failed=False, **options):
        if status:
            return self._status()
        if requeue_failed:
            return self._requeue()
        worker = Worker()
        if loop:
            self.stdout.write(f"Envoi des courriels en continu ({worker.name}).")
            # systemd's stop: finish the batch in hand (its mails are leased, not lost), then exit.
            signal.signal(signal.SIGTERM, lambda *_: worker.stop())
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: a clean stop
                worker.run(loop=True)
            return
        try:
            sent = worker.run(loop=False)
        except Exception as exc:
            raise CommandError(f"File des courriels inaccessible : {type(exc).__name__}") from exc
        self.stdout.write(f"{sent} courriel(s) envoyé(s)")

    def _status(self):
        from portail.console.views import mask_email  # the console's way: j•••@e•••.org

        stats = queue_stats(with_sent=True)
        age = stats["oldest_pending_age"]
        self.stdout.write(
            f"à envoyer : {stats['pending']}\n"
            f"en cours d'envoi : {stats['sending']}\n"
            f"envoyés : {stats['sent']}\n"
            f"en échec : {stats['failed']}\n"
            "plus ancien en attente : " + (f"{int(age)} s" if age is not None else "aucun")
        )
        failed = OutgoingMail.objects.filter(status=OutgoingMail.Status.FAILED).order_by("pk")
        for mail in failed.only("pk", "to", "subject", "attempts", "created_at", "last_error"):
            self.stdout.write(
                f"échec n° {mail.pk} — {mask_email(mail.to)} — {mail.subject} — "
                f"{mail.created_at:%Y-%m-%d %H:%M} — {mail.attempts} tentative(s) — "
                f"{mail.last_error}"
            )

    def _requeue(self):
        count = requeue_failed()
        if count:
            record("mail.requeued", count=count, by="send-mail --requeue-failed")
        self.stdout.write(f"{count} courriel(s) remis dans la file")
