"""First-connection credentials by email (issue 12): « Vous avez reçu vos identifiants par courriel ».

`send_credentials(actor, accounts)` mails each selected account that is not yet activated and has
a contact address (User.contact_email, brought by the import) its identifier and a single-use
link « Activer mon compte ». The link opens the same first-connection page as the printed code
(activation/views.py), which then pre-fills the contact address in its email field.

The link's token (Token.Purpose.ACTIVATION_LINK) is 256 bits from the CSPRNG, stored as its keyed
digest (security/tokens.py), valid PORTAIL_ACTIVATION_LINK_DAYS. It dies when the account is
activated (with it or with the printed code), when a newer link is sent, and when a référent gives
a new code. Opening it does not spend it: mail scanners open links before people do, and a parent
who closed the page must be able to come back; the activation itself is the use. The printed
code keeps working alongside until the activation.

Sending is bulk: one query per kind of row for a whole lycée (tokens, queued mails, the
CredentialsMail links, audit events), all in one transaction; the mails are only queued (the
durable queue of portail/mail), the request never talks to the relay.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

from django.conf import settings
from django.db import transaction
from django.template import Context
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone

from portail.accounts.models import State, Token, User
from portail.accounts.services import DomainError
from portail.audit.models import Event
from portail.audit.services import request_meta
from portail.mail.models import OutgoingMail
from portail.mail.queue import SEAL_PURPOSE, Worker, is_local_backend, new_message_id, wake_workers
from portail.ops import metrics
from portail.security import sealing, tokens

from .models import CredentialsMail

TEMPLATE = "activation_link"
AUDIT_TAG = "account.credentials_mailed"
SESSION_VIA_LINK = "activation_via_link"
# Rows per INSERT: well under SQLite's 32,766 variables and PostgreSQL's 65,535 parameters.
BATCH = 500


class LinkInvalid(DomainError):
    message = (
        "Ce lien d’activation n’est plus valable : il a déjà servi, il a été remplacé par un "
        "lien plus récent ou il a expiré. Utilisez le dernier courriel reçu, ou le code de votre "
        "fiche de connexion, ou demandez un nouveau code au référent ENT de l’établissement."
    )


class LinkAlreadyUsed(DomainError):
    message = "Votre compte est déjà activé, connectez-vous avec votre nouveau mot de passe."


@dataclass
class CredentialsReport:
    """Who got a mail, who has no address (a letter instead), who was mailed recently."""

    sent: list[int] = field(default_factory=list)
    without_address: list[int] = field(default_factory=list)
    recently_mailed: list[int] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        return (
            f"{len(self.sent)} courriel(s) {'à envoyer' if self.dry_run else 'mis en file'}, "
            f"{len(self.without_address)} compte(s) sans adresse (imprimez leur fiche), "
            f"{len(self.recently_mailed)} déjà destinataire(s) il y a moins de "
            f"{settings.PORTAIL_CREDENTIALS_RESEND_HOURS} h (non renvoyé(s))."
        )


def _pending(accounts):
    """The accounts that can still activate: pending, not deactivated (leavers, merged)."""
    if not hasattr(accounts, "filter"):
        accounts = User.objects.filter(pk__in=[a.pk for a in accounts])
    return accounts.filter(state=State.PENDING, deactivated_at__isnull=True)


def plan(accounts, *, resend: bool = False, now=None) -> CredentialsReport:
    """What send_credentials would do now, without doing it (the preview, `--dry-run`)."""
    now = now or timezone.now()
    rows = list(_pending(accounts).order_by("pk").values_list("pk", "contact_email"))
    report = CredentialsReport(dry_run=True)
    with_address = [pk for pk, address in rows if address]
    report.without_address = [pk for pk, address in rows if not address]
    recent = set()
    if not resend:
        since = now - timedelta(hours=settings.PORTAIL_CREDENTIALS_RESEND_HOURS)
        for i in range(0, len(with_address), BATCH):
            recent.update(
                CredentialsMail.objects.filter(
                    user_id__in=with_address[i : i + BATCH], created_at__gte=since
                ).values_list("user_id", flat=True)
            )
    report.recently_mailed = [pk for pk in with_address if pk in recent]
    report.sent = [pk for pk in with_address if pk not in recent]
    return report


def region_name() -> str:
    return getattr(settings, "PORTAIL_REGION_NAME", "") or ""


def link_for(secret: str) -> str:
    # Built from the configured base URL, never from the request's Host header.
    return settings.PORTAIL_BASE_URL + reverse("activation:link", args=[secret])


class _Renderer:
    """The three templates, compiled once for the whole sending."""

    def __init__(self):
        self.subject = get_template(f"mail/{TEMPLATE}.subject.txt").template
        self.text = get_template(f"mail/{TEMPLATE}.txt").template
        self.html = get_template(f"mail/{TEMPLATE}.html")

    def render(self, context: dict) -> tuple[str, str, str]:
        plain = Context(context, autoescape=False)  # plain text: "O'Connor", not "O&#x27;Connor"
        return (
            " ".join(self.subject.render(plain).split()),
            self.text.render(Context(context, autoescape=False)),
            self.html.render(context),
        )


def send_credentials(
    actor, accounts, *, resend: bool = False, request=None, deliver_now: bool | None = None
) -> CredentialsReport:
    """Queue one credentials mail per selected pending account with a contact address.

    Skips accounts mailed within PORTAIL_CREDENTIALS_RESEND_HOURS unless `resend`. Each sending
    gets a fresh link (the account's previous links die), a CredentialsMail row naming the queued
    mail, and an audit event (actor: the référent, or None from the command line).
    """
    if deliver_now is None:
        deliver_now = settings.PORTAIL_MAIL_DELIVER_ON_COMMIT
    now = timezone.now()
    with transaction.atomic():
        report = plan(accounts, resend=resend, now=now)
        report.dry_run = False
        if not report.sent:
            return report
        renderer = _Renderer()
        expires_at = now + timedelta(days=settings.PORTAIL_ACTIVATION_LINK_DAYS)
        context_base = {
            "base_url": settings.PORTAIL_BASE_URL,
            "region": region_name(),
            "days": settings.PORTAIL_ACTIVATION_LINK_DAYS,
        }
        batch_id = now.isoformat()
        meta = request_meta(request)
        mail_ids = []
        for i in range(0, len(report.sent), BATCH):
            ids = report.sent[i : i + BATCH]
            # Locked: a concurrent activation or sending waits for this batch, never interleaves.
            users = list(
                User.objects.select_for_update()
                .filter(pk__in=ids, state=State.PENDING)
                .order_by("pk")
                .only("pk", "identifier", "first_name", "last_name", "contact_email")
            )
            # A newer link kills the older ones (issue 12).
            Token.objects.filter(
                user_id__in=[u.pk for u in users], purpose=Token.Purpose.ACTIVATION_LINK
            ).delete()
            token_rows, mails = [], []
            for user in users:
                secret = tokens.new_url_token()  # 256 bits (issue 12: at least 128)
                token_rows.append(
                    Token(
                        user_id=user.pk,
                        purpose=Token.Purpose.ACTIVATION_LINK,
                        digest=tokens.digest(Token.Purpose.ACTIVATION_LINK, secret),
                        created_at=now,
                        expires_at=expires_at,
                    )
                )
                subject, text, html = renderer.render(
                    {
                        **context_base,
                        "first_name": user.first_name,
                        "last_name": user.last_name,
                        "identifier": user.identifier,
                        "link": link_for(secret),
                    }
                )
                mails.append(
                    OutgoingMail(
                        to=user.contact_email,
                        subject=subject[:255],
                        sealed_text=sealing.seal(SEAL_PURPOSE, text),
                        sealed_html=sealing.seal(SEAL_PURPOSE, html),
                        message_id=new_message_id(),
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
            Token.objects.bulk_create(token_rows, batch_size=BATCH)
            OutgoingMail.objects.bulk_create(mails, batch_size=BATCH)
            CredentialsMail.objects.bulk_create(
                [
                    CredentialsMail(user_id=user.pk, mail_id=mail.pk, actor=actor, created_at=now)
                    for user, mail in zip(users, mails, strict=True)
                ],
                batch_size=BATCH,
            )
            # That a mail left for the account, not to which address: no contact data in the trail.
            Event.objects.bulk_create(
                [
                    Event(
                        tag=AUDIT_TAG,
                        at=now,
                        actor=actor,
                        target_id=user.pk,
                        data={"batch": batch_id, "resend": bool(resend)},
                        **meta,
                    )
                    for user in users
                ],
                batch_size=BATCH,
            )
            for _user in users:
                metrics.audit_event(AUDIT_TAG)
            mail_ids.extend(m.pk for m in mails)
        sent = set()
        for i in range(0, len(mail_ids), BATCH):
            sent.update(
                CredentialsMail.objects.filter(mail_id__in=mail_ids[i : i + BATCH]).values_list(
                    "user_id", flat=True
                )
            )
        # An account activated meanwhile (the lock above skipped it) is no longer "sent".
        report.sent = [pk for pk in report.sent if pk in sent]
        if deliver_now:
            if is_local_backend():  # dev mailbox: no worker runs, fill it at commit
                transaction.on_commit(lambda: Worker().drain(ids=mail_ids))
            else:
                wake_workers()  # NOTIFY at commit; the workers send, never this request
    return report


def mail_credentials(created) -> str:
    """`--send-credentials` of the import commands: mail the accounts an import just created
    (its report's CreatedAccount list), after its commit; returns the line to print."""
    ids = [a.user_id for a in created if a.user_id]
    report = send_credentials(None, User.objects.filter(pk__in=ids))
    return "Identifiants par courriel : " + report.summary()


# --- The link ------------------------------------------------------------------------------------


def open_activation_link(request, secret: str) -> User:
    """Check the link's token and start the first connection in this browser's session.

    The caller redirects at once to the token-less activation page (as reset links do). Raises
    LinkAlreadyUsed (the account is active) or LinkInvalid.
    """
    from .services import begin_activation

    if not secret or len(secret) > 128:
        raise LinkInvalid
    token = (
        Token.objects.select_related("user")
        .filter(
            digest=tokens.digest(Token.Purpose.ACTIVATION_LINK, secret),
            purpose=Token.Purpose.ACTIVATION_LINK,
        )
        .first()
    )
    if token is None:
        raise LinkInvalid
    user = token.user
    if user.state == State.ACTIVE and token.used_at is not None:
        raise LinkAlreadyUsed
    if (
        not token.is_usable()
        or user.state != State.PENDING
        or user.deactivated_at is not None
        or not tokens.matches(Token.Purpose.ACTIVATION_LINK, secret, token.digest)
    ):
        raise LinkInvalid
    begin_activation(request, SimpleNamespace(user=user, token=token), remember=False, next_url="")
    request.session[SESSION_VIA_LINK] = True
    return user


def revoke_links(user) -> int:
    """Kill every activation link of the account (a référent gave a new code)."""
    deleted, _ = Token.objects.filter(user=user, purpose=Token.Purpose.ACTIVATION_LINK).delete()
    return deleted


# --- Refusals by the relay ---------------------------------------------------------------------

# RFC 5321 §4.2.1: a reply code 5yz is a permanent refusal. The queue records the relay's answer
# in OutgoingMail.last_error as smtplib prints it: "(550, b'5.1.1 …')".
_PERMANENT = re.compile(r"\(5\d\d,")


def address_refused(user) -> bool:
    """True when the account's latest credentials mail, to its current contact address, was
    refused by the relay (failed with a 5xx): the référent should print a letter instead."""
    latest = (
        CredentialsMail.objects.filter(user=user)
        .select_related("mail")
        .order_by("-created_at", "-pk")
        .first()
    )
    if latest is None or latest.mail is None:
        return False
    mail = latest.mail
    return (
        mail.status == OutgoingMail.Status.FAILED
        and mail.to == user.contact_email
        and bool(_PERMANENT.search(mail.last_error))
    )
