"""Writing people into the directory in bulk, idempotently.

Every reader (region CSV, AAF feed, former ENT) turns its file into PersonRecords; `apply_records`
then does the rest with a bounded number of queries per batch of ~5,000 people:

- an account is found again by (source, external id), else by names + birth date (same profile;
  a school's CSV only among the members of its own structures);
- a found account gets its names, birth date, INE, structures, classes, groups and links updated;
  its identifier, password and email never change on import;
- a new account gets the region's identifier ("prenom.nom", then 2, 3…) allocated in memory
  against one indexed query (per 5,000 bases) of the identifiers already taken, and an activation code
  (HMAC digest only in the database), or keeps its identifier and password hash when it migrates
  from a former ENT;
- a full import marks the source's accounts it no longer lists "sortant" (leaving_since), among
  the members of the structures it is the authority on (Scope.leaver_structures).

The whole run is one transaction: an unexpected failure changes nothing.
"""

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property, lru_cache
from operator import itemgetter

from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import IntegrityError, connection, transaction
from django.db.models import Func, Value
from django.utils import timezone

from portail.accounts.identifiers import _strip_accents, fold_email, identifier_part
from portail.accounts.models import Profile, State, Token, User
from portail.audit.services import record as audit
from portail.security import tokens

from ..models import Group, Relationship, SchoolClass
from .report import CreatedAccount, ImportReport

BATCH = 5000
logger = logging.getLogger(__name__)
_DIGITS = "0123456789"
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


@lru_cache(maxsize=65536)  # names repeat a lot (a region has thousands of Martin)
def name_key(value: str) -> str:
    """Names compare without case, accents, spaces, hyphens or apostrophes."""
    return _NOT_ALNUM.sub("", _strip_accents(value).lower())


@lru_cache(maxsize=65536)
def _identifier_part(name: str) -> str:
    return identifier_part(name)


def region_base_identifier(first_name: str, last_name: str) -> str:
    """accounts.identifiers.base_identifier, with each half cached."""
    return f"{_identifier_part(first_name)}.{_identifier_part(last_name)}"


@dataclass
class PersonRecord:
    row: int  # where it came from, for the report
    profile: str
    first_name: str
    last_name: str
    external_id: str | None = None
    birth_date: date | None = None
    email: str = ""
    ine: str = ""
    structures: set[int] = field(default_factory=set)  # structure ids
    classes: set[tuple[int, str]] = field(default_factory=set)  # (structure id, class name)
    groups: set[tuple[int, str]] = field(default_factory=set)
    class_levels: dict[tuple[int, str], str] = field(default_factory=dict)
    # AAF: a pupil lists his parents' external ids (ENTElevePersRelEleve).
    parent_external_ids: list[str] = field(default_factory=list)
    # CSV: a parent's children, already resolved to account ids by the reader.
    child_ids: set[int] = field(default_factory=set)
    # Migration from a former ENT: the identifier and stored password to keep.
    identifier: str | None = None
    encoded_password: str | None = None
    file: str = ""

    def natural_key(self):
        return self._natural_key

    @property
    def display(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @cached_property
    def _natural_key(self):
        return (self.profile, name_key(self.last_name), name_key(self.first_name), self.birth_date)


def _row_key(row, birth_date):
    return (row["profile"], name_key(row["last_name"]), name_key(row["first_name"]), birth_date)


def _activation_digester():
    """tokens.digest(ACTIVATION, code) with its key derived once for the batch, not per code."""
    key = tokens._key()
    prefix = f"{Token.Purpose.ACTIVATION}:".encode()

    def digest(code: str) -> str:
        return hmac.new(key, prefix + code.encode(), hashlib.sha256).hexdigest()

    return digest


def activation_code(random_bytes: bytes) -> str:
    """An activation code as tokens.new_activation_code() makes it (8 symbols of its 31-letter
    alphabet), drawn from CSPRNG bytes by rejection sampling: a byte >= 248 (8 x 31) is skipped,
    so every symbol is equally likely. 32 bytes give 8 symbols but with probability ~1e-20."""
    symbols = random_bytes.translate(_CODE_TABLE, _CODE_REJECTED)
    if len(symbols) < tokens.ACTIVATION_CODE_LENGTH:
        return tokens.new_activation_code()
    return symbols[: tokens.ACTIVATION_CODE_LENGTH].decode()


_CODE_LIMIT = 256 - 256 % len(tokens.ACTIVATION_ALPHABET)  # 248
# byte -> symbol (b mod 31) for the accepted bytes; the others are deleted by translate().
_CODE_TABLE = bytes(
    ord(tokens.ACTIVATION_ALPHABET[b % len(tokens.ACTIVATION_ALPHABET)]) if b < _CODE_LIMIT else 0
    for b in range(256)
)
_CODE_REJECTED = bytes(range(_CODE_LIMIT, 256))


def where_in(qs, field_name, values):
    """qs.filter(<field>__in=values). On PostgreSQL as `column = ANY(%s)` with one array
    parameter: psycopg parses every placeholder of a query, and thousands of them cost more
    than the query itself."""
    values = list(values)
    if connection.vendor != "postgresql":
        return qs.filter(**{f"{field_name}__in": values})
    qn = connection.ops.quote_name
    column = qs.model._meta.get_field(field_name).column
    where = f"{qn(qs.model._meta.db_table)}.{qn(column)} = ANY(%s)"
    return qs.extra(where=[where], params=[values])  # noqa: S610 (quoted names, bound values)


def _defaults(model):
    """[(attname, column, value or callable)] for every concrete column but the id."""
    out = []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        if f.has_default():
            default = f.default
        elif f.null:
            default = None
        else:
            default = f.get_default()
        out.append((f.attname, f.column, default))
    return out


def insert_rows(model, rows: list[dict], *, returning_ids=False) -> list[int]:
    """Insert plain rows (attname -> value; missing fields take their model default).

    PostgreSQL: COPY FROM STDIN, ids drawn from the table's sequence first when asked for;
    ~10x faster than bulk_create's INSERT for the hundred thousand accounts of a September
    import. Elsewhere (SQLite, the embedded default): bulk_create.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objs = [model(**row) for row in rows]
        model.objects.bulk_create(objs, batch_size=BATCH)
        return [o.pk for o in objs]
    fields = _defaults(model)
    table = model._meta.db_table
    pk_column = model._meta.pk.column
    # Columns: the ones the rows give (read with one itemgetter), then the model defaults
    # (constants sent as is, callables drawn per row).
    given = list(rows[0])
    by_attname = {attname: column for attname, column, _d in fields}
    rest = [(attname, column, d) for attname, column, d in fields if attname not in rows[0]]
    constants = tuple(d for _a, _c, d in rest if not callable(d))
    callables = [d for _a, _c, d in rest if callable(d)]
    columns = (
        ([pk_column] if returning_ids else [])
        + [by_attname[a] for a in given]
        + [c for _a, c, d in rest if not callable(d)]
        + [c for _a, c, d in rest if callable(d)]
    )
    read = itemgetter(*given)
    with connection.cursor() as cursor:
        ids = []
        if returning_ids:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, pk_column, len(rows)],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
        quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
        sql = f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN"
        # wrap_database_errors: a unique violation is Django's IntegrityError, as with INSERT.
        with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            for i, row in enumerate(rows):
                if len(row) != len(given):
                    raise ValueError("insert_rows: every row must give the same fields")
                values = read(row)
                if len(given) == 1:
                    values = (values,)
                values = values + constants
                if callables:
                    values = values + tuple(d() for d in callables)
                if returning_ids:
                    values = (ids[i], *values)
                copy.write_row(values)
    return ids


class _RTrimDigits(Func):
    """rtrim(identifier, '0123456789'): the base an identifier was numbered from (SQLite and
    PostgreSQL both have the two-argument rtrim)."""

    function = "RTRIM"

    def __init__(self, expression):
        super().__init__(expression, Value(_DIGITS))


def taken_identifiers_for(bases) -> dict[str, set[str]]:
    """For each base, the identifiers already given that it could collide with (base, base2, …).

    One query per 5,000 distinct bases, served by the index on rtrim(identifier, digits).
    """
    by_trimmed = defaultdict(set)
    for base in bases:
        by_trimmed[base.rstrip(_DIGITS)].add(base)
    taken = {base: set() for base in bases}
    trimmed = list(by_trimmed)
    for i in range(0, len(trimmed), BATCH):
        chunk = trimmed[i : i + BATCH]
        rows = (
            User.objects.annotate(identifier_base=_RTrimDigits("identifier"))
            .filter(identifier_base__in=chunk)
            .values_list("identifier", flat=True)
        )
        for identifier in rows:
            for base in by_trimmed[identifier.rstrip(_DIGITS)]:
                suffix = identifier[len(base) :]
                if identifier.startswith(base) and (suffix == "" or suffix.isdigit()):
                    taken[base].add(identifier)
    return taken


class IdentifierAllocator:
    """base, base2, base3… skipping what is taken, without re-scanning from 2 for each homonym."""

    def __init__(self, taken: dict[str, set[str]]):
        self.taken = taken
        self.next_n = {}

    def allocate(self, base: str) -> str:
        taken = self.taken.setdefault(base, set())
        if base not in taken:
            taken.add(base)
            return base
        n = self.next_n.get(base, 2)
        while f"{base}{n}" in taken:
            n += 1
        identifier = f"{base}{n}"
        taken.add(identifier)
        self.next_n[base] = n + 1
        return identifier


_EXISTING_FIELDS = (
    "id",
    "identifier",
    "external_source",
    "external_id",
    "profile",
    "first_name",
    "last_name",
    "birth_date",
    "ine",
    "leaving_since",
    "deactivated_at",
    "state",
    "contact_email",
)


@dataclass
class Scope:
    """What this import is the authority on: links outside it are never removed.

    structures: structure ids whose memberships (structures, classes, groups) the import sets.
    profiles: profiles of the source's accounts that a full import marks leaving when absent.
    """

    structures: set[int]
    profiles: set[str]
    # Only members of these structures can become leavers (None: those of `structures`). The
    # AAF feed passes its EtabEducNat structures: one académie's feed says nothing of another's.
    leaver_structures: set[int] | None = None


class _Run:
    def __init__(self, source, scope, *, full, now, report):
        self.source = source
        self.scope = scope
        self.full = full
        self.now = now
        self.report = report
        self.class_ids = {}
        self.group_ids = {}
        self.seen_ids = set()  # accounts listed by this import
        self.ext_to_id = {}  # external id -> account id, for the links
        # A school's own CSV is an authority on that school only (see _natural_matches).
        self.school_only = source.startswith("csv:")

    # --- structures' classes and groups ---------------------------------------------------
    def ensure_classes_and_groups(self, records):
        wanted_classes = {}
        wanted_groups = set()
        for r in records:
            for key in r.classes:
                level = r.class_levels.get(key, "")
                if level or key not in wanted_classes:
                    wanted_classes[key] = level
            wanted_groups |= r.groups
        structures = (
            {s for s, _ in wanted_classes} | {s for s, _ in wanted_groups} | self.scope.structures
        )
        existing = {
            (c.structure_id, c.name): c
            for c in SchoolClass.objects.filter(structure_id__in=structures)
        }
        missing = [
            SchoolClass(structure_id=s, name=n[:64], level=level[:64])
            for (s, n), level in wanted_classes.items()
            if (s, n) not in existing
        ]
        SchoolClass.objects.bulk_create(missing, batch_size=BATCH, ignore_conflicts=True)
        self.report.classes_created += len(missing)
        relevel = []
        for key, level in wanted_classes.items():
            cls = existing.get(key)
            if cls is not None and level and cls.level != level:
                cls.level = level
                relevel.append(cls)
        SchoolClass.objects.bulk_update(relevel, ["level"], batch_size=BATCH)
        self.class_ids = {
            (s, n): pk
            for pk, s, n in SchoolClass.objects.filter(structure_id__in=structures).values_list(
                "id", "structure_id", "name"
            )
        }
        groups_existing = set(
            Group.objects.filter(structure_id__in=structures).values_list("structure_id", "name")
        )
        Group.objects.bulk_create(
            [Group(structure_id=s, name=n[:64]) for s, n in wanted_groups - groups_existing],
            batch_size=BATCH,
            ignore_conflicts=True,
        )
        self.group_ids = {
            (s, n): pk
            for pk, s, n in Group.objects.filter(structure_id__in=structures).values_list(
                "id", "structure_id", "name"
            )
        }

    # --- finding accounts again -----------------------------------------------------------
    def match(self, records):
        """[(record, existing row dict or None)], keyed on external id, else names + birth."""
        by_ext = {}
        ext_ids = [r.external_id for r in records if r.external_id]
        for i in range(0, len(ext_ids), BATCH):
            matching = where_in(
                User.objects.filter(external_source=self.source),
                "external_id",
                ext_ids[i : i + BATCH],
            )
            for row in matching.values(*_EXISTING_FIELDS):
                by_ext[row["external_id"]] = row
        by_identifier = {}
        legacy_ids = [r.identifier for r in records if r.identifier]
        for i in range(0, len(legacy_ids), BATCH):
            for row in User.objects.filter(identifier__in=legacy_ids[i : i + BATCH]).values(
                *_EXISTING_FIELDS
            ):
                by_identifier[row["identifier"]] = row

        unmatched = [
            r
            for r in records
            if not (r.external_id and r.external_id in by_ext)
            and not (r.identifier and r.identifier in by_identifier)
        ]
        by_natural = self._natural_matches(unmatched)
        pairs = []
        claimed = set()
        for r in records:
            row = None
            if r.external_id:
                row = by_ext.get(r.external_id)
            if row is None and r.identifier:
                row = by_identifier.get(r.identifier)
                if row is not None and row["external_source"] != self.source:
                    self.report.reject(
                        r.row,
                        f"L'identifiant « {r.identifier} » est déjà utilisé par un autre compte.",
                        r.display,
                        r.file,
                    )
                    continue
            if row is None and not r.identifier:
                # A migrated account keeps its own identifier: never merged by names.
                row = by_natural.get(r.natural_key())
            if row is not None and row["id"] in claimed:
                if r.external_id and row.get("external_id") != r.external_id:
                    # Two people of the source with the same names and birth date (it happens
                    # in an académie): the first one found the old account, this one is new.
                    row = None
                else:
                    self.report.reject(
                        r.row, "Cette personne figure déjà sur une autre ligne.", r.display, r.file
                    )
                    continue
            if row is not None:
                claimed.add(row["id"])
            pairs.append((r, row))
        return pairs

    def _natural_matches(self, unmatched):
        """Accounts found without an external id, never across people who could be homonyms:

        - with a birth date: profile + names + birth date, anywhere;
        - without (parents and staff in the region's CSV): profile + names among the accounts of
          the structures this import covers, or profile + names + the same email anywhere (a
          parent with children in two schools). Two "Marc Dupont" of two schools stay two.
        Only accounts the source does not already identify can be claimed.

        A school's CSV (source "csv:<UAI>") only finds accounts that are already members of the
        structures it covers: a référent of school A must neither take over school B's pupil by
        typing his names and birth date, nor learn from the preview that he exists.
        """
        keys_wanted = {r.natural_key() for r in unmatched}
        emails = {r.email: r for r in unmatched if r.email and r.birth_date is None}
        last_names = set()
        for r in unmatched:
            last_names |= {r.last_name, r.last_name.upper(), r.last_name.title()}
        last_names = sorted(last_names)
        found = {}

        def consider(row, key):
            if row["external_id"] and row["external_source"] == self.source:
                return
            if key in keys_wanted:
                found.setdefault(key, row)

        everywhere = User.objects.all()
        if self.school_only:
            everywhere = everywhere.filter(structures__in=self.scope.structures).distinct()
        for i in range(0, len(last_names), BATCH):
            chunk = last_names[i : i + BATCH]
            dated = everywhere.filter(last_name__in=chunk, birth_date__isnull=False)
            for row in dated.values(*_EXISTING_FIELDS).order_by("id"):
                consider(row, _row_key(row, row["birth_date"]))
            local = User.objects.filter(last_name__in=chunk, structures__in=self.scope.structures)
            for row in local.values(*_EXISTING_FIELDS).distinct().order_by("id"):
                consider(row, _row_key(row, None))
        email_list = sorted(emails)
        for i in range(0, len(email_list), BATCH):
            rows = everywhere.filter(email__in=email_list[i : i + BATCH])
            for row in rows.values(*_EXISTING_FIELDS, "email").order_by("id"):
                wanted = emails.get(row["email"])
                if wanted is not None and _row_key(row, None) == wanted.natural_key():
                    consider(row, _row_key(row, None))
        return found

    # --- updating ------------------------------------------------------------------------
    def update_existing(self, pairs):
        changed_users = []
        changed_ids = set()
        for r, row in pairs:
            self.seen_ids.add(row["id"])
            if r.external_id:
                self.ext_to_id[r.external_id] = row["id"]
            changes = {}
            if r.first_name and row["first_name"] != r.first_name:
                changes["first_name"] = r.first_name
            if r.last_name and row["last_name"] != r.last_name:
                changes["last_name"] = r.last_name
            if r.birth_date and row["birth_date"] != r.birth_date:
                changes["birth_date"] = r.birth_date
            if r.ine and row["ine"] != r.ine:
                changes["ine"] = r.ine
            # The credentials mail's address follows the source until the first connection,
            # never after (issue 12): the person then gave and confirmed an address of his own.
            if r.email and row["state"] == State.PENDING and row["contact_email"] != r.email:
                changes["contact_email"] = r.email
            if self._may_claim(row):
                # An account this source already answers for, or one nobody identifies yet
                # (created by hand, or by an import before every import recorded its source).
                # Never an external id of another source: that source would lose its person.
                if r.external_id and row["external_id"] != r.external_id:
                    changes["external_id"] = r.external_id
                if row["external_source"] != self.source:
                    changes["external_source"] = self.source
            if row["leaving_since"] is not None:  # back in the feed: no longer leaving
                changes["leaving_since"] = None
            if row["deactivated_at"] is not None:
                changes["deactivated_at"] = None
            if changes:
                user = User(id=row["id"], **changes)
                changed_users.append((user, tuple(sorted(changes))))
                changed_ids.add(row["id"])
        by_fields = defaultdict(list)
        for user, fields in changed_users:
            by_fields[fields].append(user)
        for fields, users in by_fields.items():
            User.objects.bulk_update(users, list(fields), batch_size=BATCH)
        return changed_ids

    def _may_claim(self, row) -> bool:
        if row["external_source"] == self.source:
            return True
        if row["external_id"]:
            return False
        # Without an external id: unclaimed, or the académie / a former ENT (region-wide
        # authorities) taking over an account a school created; a school never takes another's.
        return not row["external_source"] or not self.school_only

    # --- memberships (structures, classes, groups) ----------------------------------------
    def sync_memberships(self, desired_by_user):
        """desired_by_user: {user id: record}. Returns the ids whose memberships changed."""
        changed = set()
        specs = (
            (User.structures.through, "structure_id", self._structure_rows, None),
            (User.classes.through, "schoolclass_id", self._class_rows, self._class_structure),
            (User.teaching_groups.through, "group_id", self._group_rows, self._group_structure),
        )
        user_ids = list(desired_by_user)
        for through, column, desired_of, structure_of in specs:
            owner = structure_of() if structure_of is not None else None
            for i in range(0, len(user_ids), BATCH):
                chunk = user_ids[i : i + BATCH]
                existing = defaultdict(dict)
                rows = where_in(through.objects.all(), "user", chunk)
                for pk, uid, target in rows.values_list("id", "user_id", column):
                    existing[uid][target] = pk
                to_add, to_remove = [], []
                for uid in chunk:
                    want = desired_of(desired_by_user[uid])
                    have = existing.get(uid, {})
                    for target in want - have.keys():
                        to_add.append(through(user_id=uid, **{column: target}))
                        changed.add(uid)
                    for target, row_pk in have.items():
                        if target in want:
                            continue
                        structure = target if owner is None else owner.get(target)
                        if structure in self.scope.structures:
                            to_remove.append(row_pk)
                            changed.add(uid)
                through.objects.filter(pk__in=to_remove).delete()
                through.objects.bulk_create(to_add, batch_size=BATCH, ignore_conflicts=True)
        return changed

    def _structure_rows(self, r):
        return set(r.structures)

    def _class_rows(self, r):
        return {self.class_ids[key] for key in r.classes if key in self.class_ids}

    def _group_rows(self, r):
        return {self.group_ids[key] for key in r.groups if key in self.group_ids}

    def _class_structure(self):
        if not hasattr(self, "_cls_struct"):
            self._cls_struct = {pk: s for (s, _n), pk in self.class_ids.items()}
        return self._cls_struct

    def _group_structure(self):
        if not hasattr(self, "_grp_struct"):
            self._grp_struct = {pk: s for (s, _n), pk in self.group_ids.items()}
        return self._grp_struct

    # --- creating ---------------------------------------------------------------------------
    def create_new(self, records):
        """Bulk-create the accounts of `records`; returns {user id: record}."""
        generated = [r for r in records if not r.identifier]
        bases = {}
        for r in generated:
            base = region_base_identifier(r.first_name, r.last_name)
            if base.startswith(".") or base.endswith("."):
                self.report.reject(
                    r.row,
                    "Impossible de former un identifiant : le nom ou le prénom ne contient "
                    "aucune lettre latine.",
                    r.display,
                    r.file,
                )
                continue
            bases[id(r)] = base
        allocator = IdentifierAllocator(taken_identifiers_for(set(bases.values())))
        keep = [r for r in records if r.identifier or id(r) in bases]
        created = {}
        for i in range(0, len(keep), BATCH):
            batch = keep[i : i + BATCH]
            for attempt in range(3):
                try:
                    with transaction.atomic():
                        created.update(self._create_batch(batch, bases, allocator))
                    break
                except IntegrityError:
                    # Someone else took an identifier meanwhile: ask the database again.
                    if attempt == 2:
                        raise
                    fresh = taken_identifiers_for({bases[id(r)] for r in batch if id(r) in bases})
                    for base, taken in fresh.items():
                        allocator.taken.setdefault(base, set()).update(taken)
        return created

    def _create_batch(self, batch, bases, allocator):
        rows = []
        # One read of the CSPRNG for the batch: 16 random bytes per account for its unusable
        # password and 16 for its session stamp (what Django and new_session_stamp() draw one
        # by one), 32 bytes for its activation code.
        entropy = secrets.token_bytes(32 * len(batch))
        code_entropy = secrets.token_bytes(32 * len(batch))
        for i, r in enumerate(batch):
            chunk = entropy[32 * i : 32 * i + 32]
            if r.identifier:
                identifier, password = r.identifier, r.encoded_password
                state = State.ACTIVE
            else:
                identifier = allocator.allocate(bases[id(r)])
                # An unusable password (Django's "!" prefix + random), never matches anything.
                password = UNUSABLE_PASSWORD_PREFIX + chunk[:16].hex()
                state = State.PENDING
            rows.append(
                {
                    "session_stamp": chunk[16:].hex(),
                    "identifier": identifier,
                    "password": password,
                    "first_name": r.first_name,
                    "last_name": r.last_name,
                    "profile": r.profile,
                    "state": state,
                    "email": r.email,
                    "email_folded": fold_email(r.email),  # rows skip User.save(): fold here
                    # Where the credentials are mailed (issue 12), for accounts still to activate.
                    "contact_email": "" if r.identifier else r.email,
                    # Always the source, even without an external id (a school CSV without Id
                    # column): a later full import of the same source finds its leavers by it.
                    "external_source": self.source,
                    "external_id": r.external_id or None,
                    "birth_date": r.birth_date,
                    "ine": r.ine,
                    "created_at": self.now,
                    "activated_at": self.now if r.identifier else None,
                }
            )
        ids = insert_rows(User, rows, returning_ids=True)
        token_rows = []
        out = {}
        accounts = []
        expires_at = self.now + timedelta(days=settings.PORTAIL_ACTIVATION_CODE_DAYS)
        digest = _activation_digester()
        for i, (pk, row, r) in enumerate(zip(ids, rows, batch, strict=True)):
            code = ""
            if not r.identifier:
                # As provisioning.new_activation_token: the code in clear for the letter, only
                # its keyed digest stored.
                code = activation_code(code_entropy[32 * i : 32 * i + 32])
                token_rows.append(
                    {
                        "user_id": pk,
                        "purpose": Token.Purpose.ACTIVATION,
                        "digest": digest(code),
                        "created_at": self.now,
                        "expires_at": expires_at,
                    }
                )
            out[pk] = r
            accounts.append(
                CreatedAccount(
                    user_id=pk,
                    identifier=row["identifier"],
                    first_name=r.first_name,
                    last_name=r.last_name,
                    profile=r.profile,
                    classes=sorted(n for _s, n in r.classes),
                    activation_code=code,
                )
            )
        insert_rows(Token, token_rows)
        through_rows = (
            (User.structures.through, "structure_id", self._structure_rows),
            (User.classes.through, "schoolclass_id", self._class_rows),
            (User.teaching_groups.through, "group_id", self._group_rows),
        )
        for through, column, desired_of in through_rows:
            insert_rows(
                through,
                [
                    {"user_id": pk, column: target}
                    for pk, r in zip(ids, batch, strict=True)
                    for target in desired_of(r)
                ],
            )
        # Only now that every row of the batch is written (a retried batch must not count twice).
        for pk, r in out.items():
            if r.external_id:
                self.ext_to_id[r.external_id] = pk
        self.seen_ids.update(out)
        self.report.created.extend(accounts)
        return out

    # --- parent–child links -------------------------------------------------------------------
    def sync_links(self, records_by_user):
        """Pupils own their parent list (AAF); parents own their children list (CSV)."""
        missing_ext = {
            ext
            for r in records_by_user.values()
            for ext in r.parent_external_ids
            if ext not in self.ext_to_id
        }
        missing = list(missing_ext)
        for i in range(0, len(missing), BATCH):
            found = where_in(
                User.objects.filter(external_source=self.source),
                "external_id",
                missing[i : i + BATCH],
            )
            for pk, ext in found.values_list("id", "external_id"):
                self.ext_to_id[ext] = pk
        unknown = 0
        desired = set()
        child_owned, parent_owned = [], []
        for uid, r in records_by_user.items():
            if r.profile == Profile.ELEVE and (r.parent_external_ids or self.full):
                child_owned.append(uid)
                for ext in r.parent_external_ids:
                    pid = self.ext_to_id.get(ext)
                    if pid is None:
                        unknown += 1
                    elif pid != uid:
                        desired.add((pid, uid))
            if r.profile == Profile.PARENT and r.child_ids:
                parent_owned.append(uid)
                desired |= {(uid, child) for child in r.child_ids if child != uid}
        if unknown:
            self.report.warnings.append(
                f"{unknown} responsable(s) cité(s) par des élèves sont absents du fichier."
            )
        existing = set()
        for owned, column in ((child_owned, "child"), (parent_owned, "parent")):
            for i in range(0, len(owned), BATCH):
                rows = where_in(Relationship.objects.all(), column, owned[i : i + BATCH])
                existing |= set(rows.values_list("parent_id", "child_id"))
        changed = set()
        to_add = desired - existing
        insert_rows(
            Relationship,
            [{"parent_id": p, "child_id": c, "created_at": self.now} for p, c in to_add],
        )
        for p, c in to_add:
            changed |= {p, c}
        child_owned_set = set(child_owned)
        # Only the side that owns the list loses links it no longer lists, and a parent's CSV
        # only removes children in the structures it covers.
        children_in_scope = set()
        if parent_owned:
            children_in_scope = set(
                User.structures.through.objects.filter(
                    structure_id__in=self.scope.structures,
                    user_id__in={c for p, c in existing if p in set(parent_owned)},
                ).values_list("user_id", flat=True)
            )
        stale = [
            (p, c)
            for p, c in existing - desired
            if (c in child_owned_set and self.full) or c in children_in_scope
        ]
        for p, c in stale:
            Relationship.objects.filter(parent_id=p, child_id=c).delete()
            changed |= {p, c}
        self.report.links_created += len(to_add)
        self.report.links_removed += len(stale)
        return changed

    # --- leavers -----------------------------------------------------------------------------
    def mark_leavers(self):
        candidates = User.objects.filter(
            external_source=self.source,
            profile__in=self.scope.profiles,
            leaving_since__isnull=True,
        ).values_list("id", "external_id", "first_name", "last_name")
        within = self.scope.leaver_structures
        if within is None:
            within = self.scope.structures
        members = User.structures.through.objects.filter(structure_id__in=within)
        candidates = candidates.filter(id__in=members.values("user_id"))
        # A person whose row was rejected (a typo in a date) is still listed: not a leaver. A row
        # without an Id is known only by its names: nobody of those names leaves.
        listed = self.report.listed_external_ids
        listed_names = self.report.listed_names
        leaving = [
            pk
            for pk, ext, first, last in candidates.iterator(chunk_size=BATCH)
            if pk not in self.seen_ids
            and (ext is None or ext not in listed)
            and (name_key(last), name_key(first)) not in listed_names
        ]
        for i in range(0, len(leaving), BATCH):
            where_in(User.objects.all(), "id", leaving[i : i + BATCH]).update(
                leaving_since=self.now
            )
        self.report.left = len(leaving)


def apply_records(
    records,
    *,
    source: str,
    scope: Scope,
    full: bool = False,
    dry_run: bool = False,
    report: ImportReport | None = None,
    actor=None,
    now=None,
) -> ImportReport:
    """Write `records` (already validated by their reader) into the directory; see module doc."""
    report = report or ImportReport()
    report.dry_run = dry_run
    now = now or timezone.now()
    run = _Run(source, scope, full=full, now=now, report=report)

    # The same person twice in one import: keep the first, reject the others.
    unique, first_row = [], {}
    for r in records:
        key = ("ext", r.external_id) if r.external_id else ("nat", r.natural_key())
        if r.identifier:
            key = ("id", r.identifier)
        if key in first_row:
            report.reject(
                r.row,
                f"Cette personne figure déjà à la ligne {first_row[key]}.",
                r.display,
                r.file,
            )
            continue
        first_row[key] = r.row
        unique.append(r)

    clock = _PhaseClock()
    try:
        with transaction.atomic():
            run.ensure_classes_and_groups(unique)
            clock.lap("classes")
            pairs = run.match(unique)
            clock.lap("match")
            existing_pairs = [(r, row) for r, row in pairs if row is not None]
            new_records = [r for r, row in pairs if row is None]
            changed = run.update_existing(existing_pairs)
            clock.lap("update")
            records_by_user = {row["id"]: r for r, row in existing_pairs}
            changed |= run.sync_memberships(records_by_user)
            clock.lap("memberships")
            created = run.create_new(new_records)
            clock.lap("create")
            records_by_user.update(created)
            changed |= run.sync_links(records_by_user)
            clock.lap("links")
            changed -= set(created)
            if full:
                run.mark_leavers()
                clock.lap("leavers")
            report.updated = len(changed & run.seen_ids)
            report.unchanged = len(existing_pairs) - report.updated
            audit(
                "directory.import",
                actor=actor,
                subject=source,
                full=full,
                dry_run=dry_run,
                **report.counts(),
            )
            if dry_run:
                raise _DryRun
    except _DryRun:
        # A preview creates nothing: no code to show, no account to point at.
        for account in report.created:
            account.user_id = None
            account.activation_code = ""
    return report


class _PhaseClock:
    def __init__(self):
        self.last = time.perf_counter()

    def lap(self, phase):
        now = time.perf_counter()
        logger.debug("import phase %s: %.2f s", phase, now - self.last)
        self.last = now


class _DryRun(Exception):
    """Rolls the preview's transaction back."""
