"""The letters file and the accounts it lists are one unit (issue 8 §4).

An import that creates accounts prints their activation codes once, in a letters file. A kill at
any moment (even during the final COMMIT) must leave either nothing, or the accounts plus a
complete letters file; never accounts whose codes nobody can print, nor codes lying in a
forgotten temporary file.

Design:

1. Inside the import's transaction, the new accounts' letter rows are stored *sealed*
   (AES-256-GCM, `portail.security.sealing`, key derived from SECRET_KEY and never in the
   database) in `PendingLetters`, in chunks, under a run id and the letters file's path. The
   accounts and their letters therefore commit, or vanish, together: PostgreSQL's COMMIT is the
   one atomic step. A database dump alone shows no usable code.
2. After the commit, the file is written from those rows atomically: an unnamed file
   (`O_TMPFILE`, mode 0600) in the target's directory is written and fsynced, then linked to its
   final name (which fails rather than overwrite), and the directory is fsynced. A kill before
   the link leaves no file at all: the kernel frees an unnamed file with its last descriptor, so
   no temporary file with codes can remain. (Where `O_TMPFILE` is not supported, a 0600 named
   temporary file is used and removed on any error; a kill can then leave it, and the next run
   removes it: see `_stale_parts`.)
3. Then the rows are erased. A kill between the link and the erase leaves rows whose file
   exists: since the link is atomic, that file is complete, and the next run only erases them.
4. Every later import (not a preview) first settles earlier runs: rows whose file exists are
   erased; the others are written to their own file if its directory still exists and the name
   is free and differs from this run's; otherwise (typically: the same command run again with
   the same `--output`) they are adopted by this run, inside its transaction, and land in its
   letters file. Only accounts still waiting for their first connection get a letter.

So a re-run after any interruption produces the letters of every account still waiting.
"""

import csv
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from django.db import models, transaction
from django.utils import timezone

from portail.security.sealing import seal, unseal

from .letters import LETTER_HEADER, csv_cell
from .report import CreatedAccount

logger = logging.getLogger(__name__)

PURPOSE = "directory.import.letters"
CHUNK = 1000  # accounts per sealed row: one AES-GCM operation and one INSERT per 1000 letters
PART_PREFIX = ".portail-letters-"

# Test hook: `PORTAIL_IMPORT_TEST_PAUSE=<point>` makes an import announce the point on stderr and
# sleep there, so a test can SIGKILL it at a known step. Unset in production: costs one lookup.
PAUSE_ENV = "PORTAIL_IMPORT_TEST_PAUSE"


def checkpoint(point: str) -> None:
    if os.environ.get(PAUSE_ENV) == point:
        os.write(2, f"pause:{point}\n".encode())
        time.sleep(3600)


class PendingLetters(models.Model):
    """Sealed letter rows of an import whose letters file is not written yet."""

    run = models.UUIDField(db_index=True)
    target = models.CharField(max_length=4096)  # absolute path of the letters file
    layout = models.CharField(max_length=16)  # "region" (import-users) or "aaf" (import-aaf)
    chunk = models.PositiveIntegerField()
    sealed = models.TextField()  # AES-GCM of a JSON list of letters
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "directory"
        ordering = ["created_at", "run", "chunk"]
        verbose_name = "courriers en attente"

    def __str__(self):
        return f"{self.target} ({self.chunk})"


# ----- the layouts of the two commands' files (unchanged from before) -----


def _region_rows(letters):
    yield LETTER_HEADER
    for a in letters:
        yield map(
            csv_cell,
            [a.last_name, a.first_name, ", ".join(a.classes), a.identifier, a.activation_code],
        )


def _aaf_rows(letters):
    from portail.accounts.models import Profile

    yield ["Nom", "Prénom", "Profil", "Classes", "Identifiant", "Code d'activation"]
    for a in letters:
        yield [
            csv_cell(a.last_name),
            csv_cell(a.first_name),
            Profile(a.profile).label,
            csv_cell(", ".join(a.classes)),
            a.identifier,
            a.activation_code,
        ]


# UTF-8 with BOM for the region's file (Excel shows the accents right); the AAF file never had one.
LAYOUTS = {"region": (_region_rows, "utf-8-sig", "\r\n"), "aaf": (_aaf_rows, "utf-8", "\r\n")}


# ----- inside the import's transaction -----


def new_run() -> uuid.UUID:
    return uuid.uuid4()


def stash(run: uuid.UUID, target: Path, layout: str, accounts: Iterable[CreatedAccount]) -> int:
    """Store the letters of `accounts` sealed; call inside the transaction that creates them."""
    letters = [a for a in accounts if a.user_id is not None and a.activation_code]
    start = PendingLetters.objects.filter(run=run).count()
    rows = []
    for i in range(0, len(letters), CHUNK):
        payload = json.dumps(
            [
                [a.user_id, a.identifier, a.first_name, a.last_name, a.profile, a.classes]
                + [a.activation_code]
                for a in letters[i : i + CHUNK]
            ]
        )
        rows.append(
            PendingLetters(
                run=run,
                target=str(target),
                layout=layout,
                chunk=start + i // CHUNK,
                sealed=seal(PURPOSE, payload),
            )
        )
    PendingLetters.objects.bulk_create(rows)
    return len(letters)


def adopt(run: uuid.UUID, earlier: Iterable[uuid.UUID], target: Path, layout: str) -> None:
    """Make earlier runs' letters part of this run (same transaction as the import)."""
    offset = PendingLetters.objects.filter(run=run).count()
    for row in (
        PendingLetters.objects.select_for_update(skip_locked=True)
        .filter(run__in=list(earlier))
        .order_by("created_at", "run", "chunk")
    ):
        PendingLetters.objects.filter(pk=row.pk).update(
            run=run, target=str(target), layout=layout, chunk=offset
        )
        offset += 1


# ----- after the commit -----


def _letters(run) -> list[CreatedAccount]:
    from portail.accounts.models import State, User

    letters = []
    for row in PendingLetters.objects.filter(run=run).order_by("chunk"):
        for user_id, identifier, first, last, profile, classes, code in json.loads(
            unseal(PURPOSE, row.sealed)
        ):
            letters.append(CreatedAccount(user_id, identifier, first, last, profile, classes, code))
    # Only accounts still waiting for their first connection (an account activated, removed or
    # deactivated since has no use for its letter).
    waiting = set()
    ids = [a.user_id for a in letters]
    for i in range(0, len(ids), 10000):
        waiting |= set(
            User.objects.filter(
                id__in=ids[i : i + 10000], state=State.PENDING, deactivated_at__isnull=True
            ).values_list("id", flat=True)
        )
    return [a for a in letters if a.user_id in waiting]


def write_atomically(target: Path, fill: Callable, encoding: str) -> None:
    """Create `target` (0600) whole or not at all; never replaces an existing file."""
    target = Path(target)
    directory = target.parent
    fd = None
    part = None
    try:
        try:
            fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600)
        except (AttributeError, OSError):
            part = directory / f"{PART_PREFIX}{uuid.uuid4().hex}.part"
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w", encoding=encoding, newline="", closefd=False) as stream:
            fill(stream)
            stream.flush()
        os.fsync(fd)
        checkpoint("letters-written")
        if part is None:
            # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N names the unnamed file (open(2)).
            # A src_dir_fd makes CPython call linkat, not link(), which would not follow it.
            proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.link(str(fd), target, src_dir_fd=proc, follow_symlinks=True)
            finally:
                os.close(proc)
        else:
            os.link(part, target)  # like rename, but refuses to replace an existing file
    finally:
        if fd is not None:
            os.close(fd)
        if part is not None:
            part.unlink(missing_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the new name is durable before the sealed rows go
    finally:
        os.close(dir_fd)


def deliver(run, target: Path | None = None, layout: str = "") -> tuple[Path | None, int]:
    """Write the letters file of `run` from its sealed rows, then erase them.

    With `target` and `layout` the file is written even when the run created no account (a
    header only, as a re-import always gave); without, they are read from the rows.
    """
    first = PendingLetters.objects.filter(run=run).first()
    if first is not None:
        target, layout = Path(first.target), first.layout
    if target is None:
        return None, 0
    rows, encoding, terminator = LAYOUTS[layout]
    letters = _letters(run)

    def fill(stream):
        csv.writer(stream, delimiter=";", lineterminator=terminator).writerows(rows(letters))

    write_atomically(target, fill, encoding)  # FileExistsError keeps the rows for a later run
    checkpoint("letters-linked")
    with transaction.atomic():
        PendingLetters.objects.filter(run=run).delete()
    return target, len(letters)


def _stale_parts(directory: Path) -> None:
    # Only left where O_TMPFILE was unavailable and the process was killed while writing.
    for part in directory.glob(f"{PART_PREFIX}*.part"):
        part.unlink(missing_ok=True)


def settle(target: Path | None, say: Callable[[str], None]) -> list:
    """Finish earlier interrupted runs; return the runs this import must adopt (see module doc)."""
    adopt_runs = []
    if target is not None:
        _stale_parts(target.parent)
    runs = PendingLetters.objects.order_by("run").values_list("run", "target").distinct()
    for run, earlier_target in runs:
        path = Path(earlier_target)
        if path.parent.is_dir():
            _stale_parts(path.parent)
        if path.exists():
            # Linked atomically, so complete: only the erase was missing.
            PendingLetters.objects.filter(run=run).delete()
            continue
        if target is not None and (path == target or not path.parent.is_dir()):
            adopt_runs.append(run)
            continue
        if target is None and not path.parent.is_dir():
            continue  # kept sealed until an import with a letters file adopts them
        try:
            written, count = deliver(run)
        except OSError as exc:
            say(
                f"Avertissement : les courriers d'une importation interrompue n'ont pas pu être "
                f"écrits dans {path} ({exc.strerror}) ; ils restent chiffrés en base et seront "
                "écrits par une prochaine importation."
            )
            continue
        say(f"Importation interrompue : {count} courrier(s) en attente écrit(s) dans {written}.")
    return adopt_runs
