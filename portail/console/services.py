"""Domain operations of the référent console: the second factor and the actions on an account.

Each operation runs in a transaction, changes the account, and writes one audit event with the
actor, the target and the before/after values (never a code or a secret).
"""

import time

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from portail.accounts.models import Profile, State, User, identifier_validator
from portail.accounts.provisioning import issue_activation_code
from portail.accounts.services import DomainError
from portail.activation.credentials import revoke_links
from portail.audit.models import Event
from portail.audit.services import record, request_meta
from portail.directory import services as directory_services
from portail.directory.models import (
    Function,
    Relationship,
    is_regional_admin,
    structures_administered_by,
)
from portail.recovery.services import request_password_reset
from portail.security import ratelimit
from portail.security.throttle import clear_account_failures

from . import otp
from .models import RecoveryCode, TOTPDevice

# --- Errors -------------------------------------------------------------------------------------


class InvalidSecondFactor(DomainError):
    message = "Le code est incorrect ou a déjà servi. Saisissez le code affiché par l’application."


class AlreadyEnrolled(DomainError):
    message = "Une application d’authentification est déjà enregistrée pour ce compte."


class AlreadyBlocked(DomainError):
    message = "Ce compte est déjà bloqué."


class NotBlocked(DomainError):
    message = "Ce compte n’est pas bloqué."


class BlockedFirst(DomainError):
    message = "Ce compte est bloqué : débloquez-le d’abord pour lui donner un nouveau code."


class InvalidIdentifier(DomainError):
    message = (
        "L'identifiant ne comporte que des minuscules sans accent, des chiffres et des points "
        "(64 caractères au plus)."
    )


class IdentifierTaken(DomainError):
    message = "Cet identifiant est déjà utilisé par un autre compte."


class InvalidLink(DomainError):
    message = "Un lien relie un compte parent à un compte élève."


class LinkExists(DomainError):
    message = "Ce parent est déjà lié à cet élève."


class NoEmail(DomainError):
    message = "Ce compte n’a pas d’adresse de messagerie : donnez-lui un nouveau code d’activation."


class NotStaff(DomainError):
    message = (
        "Un référent ENT est un enseignant ou un personnel de l’établissement, dont le compte "
        "est activé et non bloqué."
    )


class AlreadyReferent(DomainError):
    message = "Ce compte est déjà référent ENT de cet établissement."


class NotReferent(DomainError):
    message = "Ce compte n’est pas référent ENT de cet établissement."


class CannotMerge(DomainError):
    message = "Ces deux comptes ne peuvent pas être fusionnés."


class MergeProfilesDiffer(CannotMerge):
    message = (
        "Les deux comptes n’ont pas le même profil : ce sont deux comptes distincts, "
        "écartez la paire."
    )


class MergeFunctionHolder(CannotMerge):
    message = "Un compte qui exerce une fonction (référent ENT) ne peut pas être fusionné."


class AlreadyMerged(CannotMerge):
    message = "Ce compte est déjà désactivé : il a sans doute déjà été fusionné."


class MergeOutOfScope(CannotMerge):
    message = (
        "L'un de ces comptes appartient aussi à un autre établissement : seul l’administrateur "
        "régional peut le fusionner."
    )


class Deactivated(DomainError):
    message = "Ce compte est désactivé (fusionné ou sortant) : il ne peut plus être débloqué."


# --- Second factor (RFC 6238) ------------------------------------------------------------------


@transaction.atomic
def start_totp_enrolment(user) -> str:
    """The secret of the device being enrolled (created on first call, shown until confirmed)."""
    device = TOTPDevice.objects.select_for_update().filter(user=user).first()
    if device is not None and device.confirmed_at is not None:
        raise AlreadyEnrolled
    if device is None:
        device = TOTPDevice.objects.create(
            user=user, encrypted_secret=otp.encrypt(otp.new_secret())
        )
    return otp.decrypt(device.encrypted_secret)


def _new_recovery_codes(user) -> list[str]:
    RecoveryCode.objects.filter(user=user).delete()
    codes = [otp.new_recovery_code() for _ in range(otp.RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, digest=otp.recovery_digest(code)) for code in codes
    )
    return codes


def confirm_totp_enrolment(request, user, code: str, *, at: float | None = None) -> list[str]:
    """Check a first code from the app; return the recovery codes in clear (shown once)."""
    ratelimit.hit("console-otp:user", user.pk)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user).first()
        if device is None or device.confirmed_at is not None:
            raise AlreadyEnrolled
        step = otp.matching_step(otp.decrypt(device.encrypted_secret), code, at or time.time())
        if step is not None:
            device.confirmed_at = timezone.now()
            device.last_used_step = step
            device.save(update_fields=["confirmed_at", "last_used_step"])
            codes = _new_recovery_codes(user)
            record("console.totp.enrolled", request=request, target=user)
    if step is None:  # recorded outside the transaction that the error would roll back
        record("console.totp.failed", request=request, target=user, during="enrolment")
        raise InvalidSecondFactor
    ratelimit.clear("console-otp:user", user.pk)
    return codes


def is_enrolled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


@transaction.atomic
def _consume_second_factor(user, typed: str, at: float) -> tuple[str | None, bool]:
    """("totp" | "recovery" | None, whether a valid but already used TOTP code was typed)."""
    device = TOTPDevice.objects.select_for_update().filter(user=user).first()
    if device is None or device.confirmed_at is None:
        return None, False
    step = otp.matching_step(otp.decrypt(device.encrypted_secret), typed, at)
    # RFC 6238 §5.2: a code accepted once is refused after, and so is any older one.
    if step is not None and (device.last_used_step is None or step > device.last_used_step):
        device.last_used_step = step
        device.save(update_fields=["last_used_step"])
        return "totp", False
    normalised = otp.normalise_recovery_code(typed)
    if normalised and RecoveryCode.objects.filter(
        user=user, digest=otp.recovery_digest(normalised), used_at__isnull=True
    ).update(used_at=timezone.now()):
        return "recovery", False
    return None, step is not None


def verify_second_factor(request, user, typed: str, *, at: float | None = None) -> str:
    """Accept a TOTP code not used before, or an unused recovery code; return which ("totp",
    "recovery"). Raises InvalidSecondFactor or ratelimit.RateLimited."""
    ratelimit.hit("console-otp:user", user.pk)
    how, replay = _consume_second_factor(user, typed, at or time.time())
    if how is None:
        record("console.totp.failed", request=request, target=user, replay=replay)
        raise InvalidSecondFactor
    if how == "recovery":
        left = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
        record("console.totp.recovery_used", request=request, target=user, left=left)
    else:
        record("console.totp.verified", request=request, target=user)
    ratelimit.clear("console-otp:user", user.pk)
    return how


# --- Actions on an account ---------------------------------------------------------------------


def _audit(tag, request, account, **data):
    record(tag, request=request, target=account, actor=request.user, **data)


@transaction.atomic
def block_account(request, account):
    if account.state == State.BLOCKED:
        raise AlreadyBlocked
    before = account.state
    account.state = State.BLOCKED
    account.end_all_sessions()  # every session dies on its next request
    account.save(update_fields=["state", "session_stamp"])
    _audit(
        "console.account.blocked",
        request,
        account,
        before={"state": before},
        after={"state": account.state},
    )


@transaction.atomic
def unblock_account(request, account):
    if account.state != State.BLOCKED:
        raise NotBlocked
    if account.deactivated_at is not None:  # unblocking would not let it in anyway
        raise Deactivated
    # Back to where it was: an account without a password (never activated, or given a new code)
    # returns to its first connection, and its activation code works again.
    account.state = State.ACTIVE if account.has_usable_password() else State.PENDING
    account.save(update_fields=["state"])
    clear_account_failures(account)  # the référent vouches for the owner: login delays end too
    _audit(
        "console.account.unblocked",
        request,
        account,
        before={"state": State.BLOCKED},
        after={"state": account.state},
    )


@transaction.atomic
def give_new_activation_code(request, account) -> str:
    """Back to the first connection: the old code and password die; the new code, once."""
    if account.state == State.BLOCKED:  # a new code would silently unblock it
        raise BlockedFirst
    before = account.state
    code = issue_activation_code(account)
    revoke_links(account)  # the mailed « Activer mon compte » links die with the old code
    _audit(
        "console.account.new_code",
        request,
        account,
        before={"state": before},
        after={"state": account.state},
    )
    return code


def send_reset_link(request, account):
    """Mail a reset link to the account's address; the référent never sees a password.

    The one way to make and mail a reset token is the recovery package's.
    """
    if not account.email:
        raise NoEmail
    # Its own audit event ("account.password.reset_requested") names the référent as actor.
    request_password_reset(request, account.identifier, by_referent=True)
    _audit("console.account.reset_link_sent", request, account)


@transaction.atomic
def change_identifier(request, account, new_identifier: str):
    new_identifier = new_identifier.strip()
    if len(new_identifier) > 64 or not identifier_validator.regex.fullmatch(new_identifier):
        raise InvalidIdentifier
    if new_identifier == account.identifier:
        return
    if User.objects.filter(identifier=new_identifier).exclude(pk=account.pk).exists():
        raise IdentifierTaken
    before = account.identifier
    account.identifier = new_identifier
    try:
        with transaction.atomic():
            account.save(update_fields=["identifier"])
    except IntegrityError:  # taken by a concurrent change
        raise IdentifierTaken from None
    _audit(
        "console.account.identifier_changed",
        request,
        account,
        before={"identifier": before},
        after={"identifier": new_identifier},
    )


@transaction.atomic
def rename_account(request, account, first_name: str, last_name: str):
    before = {"first_name": account.first_name, "last_name": account.last_name}
    account.first_name = first_name.strip()
    account.last_name = last_name.strip()
    after = {"first_name": account.first_name, "last_name": account.last_name}
    if before == after:
        return
    account.save(update_fields=["first_name", "last_name"])
    _audit("console.account.renamed", request, account, before=before, after=after)


@transaction.atomic
def link_parent(request, parent, child):
    if parent.profile != Profile.PARENT or child.profile != Profile.ELEVE:
        raise InvalidLink
    if Relationship.objects.filter(parent=parent, child=child).exists():
        raise LinkExists
    Relationship.objects.create(parent=parent, child=child)
    for account, other in ((parent, child), (child, parent)):
        _audit(
            "console.account.linked",
            request,
            account,
            before={},
            after={"parent": parent.identifier, "child": child.identifier},
            other=other.identifier,
        )


@transaction.atomic
def unlink_parent(request, parent, child):
    deleted, _ = Relationship.objects.filter(parent=parent, child=child).delete()
    if not deleted:
        return
    for account, other in ((parent, child), (child, parent)):
        _audit(
            "console.account.unlinked",
            request,
            account,
            before={"parent": parent.identifier, "child": child.identifier},
            after={},
            other=other.identifier,
        )


# --- Login letters -----------------------------------------------------------------------------


@transaction.atomic
def accounts_with_a_code(accounts) -> set[int]:
    """The ids, among `accounts`, of those holding a live activation code: a letter (or the
    import's letters file, or a code shown once) already carries it. One query."""
    from portail.accounts.models import Token

    return set(
        Token.objects.filter(
            user__in=accounts,
            purpose=Token.Purpose.ACTIVATION,
            used_at__isnull=True,
            expires_at__gt=timezone.now(),
        ).values_list("user_id", flat=True)
    )


@transaction.atomic
def issue_letters(request, accounts, *, renew=False) -> list[tuple[User, str | None]]:
    """The letters of `accounts`: activated accounts get one without code; a not-yet-activated
    account without a live code gets a new one; one that has a code (its letter is out) gets a
    new one only when the référent asks (`renew`), else no letter: codes are stored only
    hashed, so its code cannot be printed again, and a silent new code would kill the letter
    already handed out."""
    batch = timezone.now().isoformat()
    has_code = accounts_with_a_code([a.pk for a in accounts if a.state == State.PENDING])
    letters = []
    for account in accounts:
        if account.state != State.PENDING:
            letters.append((account, None))
            continue
        if account.pk in has_code and not renew:
            continue
        code = issue_activation_code(account)
        _audit(
            "console.letters.new_code",
            request,
            account,
            batch=batch,
            renewed=account.pk in has_code,
        )
        letters.append((account, code))
    return letters


# --- Possible duplicates -----------------------------------------------------------------------


def possible_duplicates(accounts) -> list[tuple[User, User, str]]:
    """Pairs among `accounts` with the same names and birth date, or the same names and email,
    that nobody has declared different. (first, second, reason), first.pk < second.pk."""
    from django.db.models import Count
    from django.db.models.functions import Lower

    from .models import IgnoredDuplicate

    rules = [
        ("même nom, prénom et date de naissance", ["birth_date"], {"birth_date__isnull": False}),
        ("même nom, prénom et adresse de messagerie", ["email_l"], {"email_l__gt": ""}),
    ]
    keyed = accounts.annotate(
        first_l=Lower("first_name"), last_l=Lower("last_name"), email_l=Lower("email")
    )
    ignored = set(IgnoredDuplicate.objects.values_list("first_id", "second_id"))
    pairs, seen = [], set()
    for reason, extra, condition in rules:
        fields = ["first_l", "last_l", *extra]
        groups = (
            keyed.filter(**condition)
            .order_by()
            .values(*fields)
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
        )
        for group in groups[:500]:
            members = list(keyed.filter(**{f: group[f] for f in fields}).order_by("pk")[:20])
            for i, first in enumerate(members):
                for second in members[i + 1 :]:
                    key = (first.pk, second.pk)
                    if key not in ignored and key not in seen:
                        seen.add(key)
                        pairs.append((first, second, reason))
    return pairs


@transaction.atomic
def ignore_duplicate(request, first, second):
    from .models import IgnoredDuplicate

    if first.pk > second.pk:
        first, second = second, first
    _, created = IgnoredDuplicate.objects.get_or_create(
        first=first, second=second, defaults={"ignored_by": request.user}
    )
    if created:
        for account, other in ((first, second), (second, first)):
            _audit("console.duplicate.ignored", request, account, other=other.pk)


# Blank fields of the kept account that the folded one may fill (never overwritten).
MERGE_FILLED_FIELDS = ("email", "phone", "birth_date", "ine")


def _merge_snapshot(account) -> dict:
    return {
        "structures": sorted(account.structures.values_list("uai", flat=True)),
        "classes": sorted(account.classes.values_list("name", flat=True)),
        "groups": sorted(account.teaching_groups.values_list("name", flat=True)),
        # Accounts by id, contact data by presence only: the append-only trail must not keep
        # personal data past a leaver's erasure (arrêté du 30 novembre 2006, art. 6).
        "parents": sorted(
            User.objects.filter(child_links__child=account).values_list("pk", flat=True)
        ),
        "children": sorted(
            User.objects.filter(parent_links__parent=account).values_list("pk", flat=True)
        ),
        "external_id": bool(account.external_id),
        **{f: bool(getattr(account, f)) for f in MERGE_FILLED_FIELDS},
    }


@transaction.atomic
def merge_accounts(request, kept, folded):
    """One person, two accounts: `folded` gives its classes, groups, structures and parent–child
    links to `kept` and is deactivated (blocked, every session and code dead). Its identifier and
    password die with it; `kept` keeps its own. `folded` stays a member of its structures, so the
    référent still finds it, and its audit trail, in the console."""
    if kept.pk == folded.pk:
        raise CannotMerge
    # Fresh rows, locked in pk order (no deadlock between two référents merging the same pair
    # in opposite directions): the second one finds the other account already deactivated.
    locked = {
        u.pk: u
        for u in User.objects.select_for_update().filter(pk__in=[kept.pk, folded.pk]).order_by("pk")
    }
    kept, folded = locked[kept.pk], locked[folded.pk]
    if kept.profile != folded.profile:
        raise MergeProfilesDiffer
    if Function.objects.filter(user__in=[kept, folded]).exists():
        raise MergeFunctionHolder
    if kept.deactivated_at is not None or folded.deactivated_at is not None:
        raise AlreadyMerged
    if not is_regional_admin(request.user):
        # Memberships move with the merge: a référent may only merge accounts that belong to
        # no school but his own, or he would change (and see) another school's data.
        mine = set(structures_administered_by(request.user).values_list("pk", flat=True))
        theirs = set(
            User.structures.through.objects.filter(user__in=[kept, folded]).values_list(
                "structure_id", flat=True
            )
        )
        if not theirs <= mine:
            raise MergeOutOfScope
    kept_before, folded_before = _merge_snapshot(kept), _merge_snapshot(folded)
    folded_state = folded.state

    kept.structures.add(*folded.structures.all())
    kept.classes.add(*folded.classes.all())
    kept.teaching_groups.add(*folded.teaching_groups.all())
    folded.classes.clear()
    folded.teaching_groups.clear()
    for link in Relationship.objects.filter(parent=folded):
        if link.child_id != kept.pk:
            Relationship.objects.get_or_create(parent=kept, child_id=link.child_id)
    for link in Relationship.objects.filter(child=folded):
        if link.parent_id != kept.pk:
            Relationship.objects.get_or_create(parent_id=link.parent_id, child=kept)
    Relationship.objects.filter(Q(parent=folded) | Q(child=folded)).delete()

    filled = [f for f in MERGE_FILLED_FIELDS if not getattr(kept, f) and getattr(folded, f)]
    for field in filled:
        setattr(kept, field, getattr(folded, field))
    if kept.external_id is None and folded.external_id is not None:
        # The next import must find the person again on the account that lives on.
        kept.external_source, kept.external_id = folded.external_source, folded.external_id
        folded.external_id = None
        folded.save(update_fields=["external_id"])  # first: the pair is unique
        filled += ["external_source", "external_id"]
    if filled:
        kept.save(update_fields=filled)

    folded.state = State.BLOCKED
    folded.deactivated_at = timezone.now()
    folded.end_all_sessions()
    folded.save(update_fields=["state", "deactivated_at", "session_stamp"])
    folded.tokens.all().delete()  # its activation code and reset links die now

    ids = {"kept": kept.pk, "folded": folded.pk}
    _audit(
        "console.account.merged",
        request,
        kept,
        before=kept_before,
        after=_merge_snapshot(kept),
        **ids,
    )
    _audit(
        "console.account.merged_into",
        request,
        folded,
        before={**folded_before, "state": folded_state},
        after={**_merge_snapshot(folded), "state": folded.state, "deactivated": True},
        **ids,
    )
    return kept


# --- Référents ENT (the regional administrator's pages) ---------------------------------------

STAFF_PROFILES = (Profile.ENSEIGNANT, Profile.PERSONNEL)


def referent_candidates(structure):
    """Who may become référent ENT of `structure`: its own activated, unblocked staff."""
    return User.objects.filter(
        structures=structure,
        profile__in=STAFF_PROFILES,
        state=State.ACTIVE,
        deactivated_at__isnull=True,
    ).exclude(
        pk__in=Function.objects.filter(role=Function.Role.REFERENT, structure=structure).values(
            "user_id"
        )
    )


@transaction.atomic
def appoint_referent(request, structure, account):
    """The directory's operation (regional admins only, audited), for one of the school's staff."""
    if Function.objects.filter(
        user=account, role=Function.Role.REFERENT, structure=structure
    ).exists():
        raise AlreadyReferent
    if not referent_candidates(structure).filter(pk=account.pk).exists():
        raise NotStaff
    directory_services.appoint_referent(request.user, account, structure, request=request)


@transaction.atomic
def dismiss_referent(request, structure, account):
    if not directory_services.dismiss_referent(request.user, account, structure, request=request):
        raise NotReferent


# --- Import of a school's own file ------------------------------------------------------------


def import_school_file(request, data: bytes, *, structure, profile, full, dry_run):
    """The region's CSV for one school, through the directory's import; a confirmed import also
    writes one "account.created" event per new account (the bulk AAF path writes only its
    summary: a million events each September would say nothing more)."""
    from portail.directory.imports.region_csv import import_region_csv

    with transaction.atomic():
        report = import_region_csv(
            data,
            structure=structure,
            profile=profile,
            full=full,
            dry_run=dry_run,
            actor=request.user,
        )
        if not dry_run:
            meta = request_meta(request)
            at = timezone.now()
            # One INSERT for a whole school (1,500 rows), the same fields as audit.record().
            Event.objects.bulk_create(
                Event(
                    tag="account.created",
                    at=at,
                    actor=request.user,
                    target_id=account.user_id,
                    subject="",  # the account by its id only, as audit.record() does
                    data={
                        "source": f"csv:{structure.uai}",
                        "after": {
                            "identifier": account.identifier,
                            "profile": account.profile,
                            "classes": account.classes,
                        },
                    },
                    **meta,
                )
                for account in report.created
                if account.user_id is not None
            )
    return report
