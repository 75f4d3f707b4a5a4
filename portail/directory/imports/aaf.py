"""The académie's AAF feed (Annuaire Académique Fédérateur), full export ("Complet").

A directory holds files named `<prefix>_Complet_<date>_<category>_<NNNN>.xml`, category one of
EtabEducNat (structures), PersEducNat (teachers and staff), Eleve (pupils), PersRelEleve (parents
and other responsible persons). Each file is a DSML-like list of entries:

    <ficAlimMENESR>
      <addRequest>
        <operationalAttributes><attr name="categoriePersonne"><value>Eleve</value></attr>…
        <identifier><id>1234567</id></identifier>
        <attributes>
          <attr name="ENTPersonJointure"><value>1234567</value></attr>
          <attr name="sn"><value>DUPONT</value></attr>
          <attr name="ENTEleveClasses"><value>STRUCTJOINTURE$2NDE3</value></attr>
          …

Multi-valued references to a structure are "<structure jointure>$<value>". Files are streamed
with lxml's iterparse (each entry is dropped once read); a DOCTYPE is refused outright, entities
are never resolved and nothing is fetched, so no XML trick reaches the database.
"""

import logging
import multiprocessing
import re
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from lxml import etree

from portail.accounts.models import Profile

from ..models import Structure, StructureKind, uai_validator
from .engine import PersonRecord, Scope, apply_records
from .report import ImportFileError, ImportReport
from .text import parse_date

logger = logging.getLogger(__name__)
SOURCE = "aaf"
CATEGORIES = ("EtabEducNat", "PersEducNat", "Eleve", "PersRelEleve")
_FILE = re.compile(r"_(Complet|Delta)_(\d+)_(EtabEducNat|PersEducNat|Eleve|PersRelEleve)_\d+\.xml$")

# ENTStructureTypeStruct -> kind (the academic nomenclature's short names).
_KINDS = (
    ("CLG", StructureKind.COLLEGE),
    ("LPO", StructureKind.LYCEE),
    ("LGT", StructureKind.LYCEE),
    ("LYC", StructureKind.LYCEE),
    ("LP", StructureKind.LYCEE_PRO),
    ("LEGTA", StructureKind.LYCEE_AGRICOLE),
    ("LPA", StructureKind.LYCEE_AGRICOLE),
    ("EREA", StructureKind.EREA),
    ("CFA", StructureKind.CFA),
    ("EC", StructureKind.ECOLE),
)


def _kind(type_struct: str) -> str:
    code = type_struct.strip().upper()
    for prefix, kind in _KINDS:
        if code.startswith(prefix):
            return kind
    return StructureKind.AUTRE


_ROOT_TAG = re.compile(rb"<[A-Za-z_]")


def iter_entries(path: Path):
    """Yield (entry number, {attr name: [values]}) for each addRequest/modifyRequest.

    lxml's iterparse filters the entries in C (3x faster than xml.etree on a million-person
    export); each entry is dropped from memory once read. No DOCTYPE (checked first), entities
    never resolved, no network.
    """
    with open(path, "rb") as f:
        head = f.read(65536)
    root = _ROOT_TAG.search(head)
    if b"<!DOCTYPE" in head[: root.start() if root else len(head)]:
        raise _doctype_refused(path)
    number = 0
    entries = etree.iterparse(  # noqa: S320 (no DTD, no entity resolution, no network)
        str(path),
        events=("end",),
        tag=("{*}addRequest", "{*}modifyRequest"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
    )
    try:
        for _event, entry in entries:
            number += 1
            # The byte pre-check above is only a fast path (a comment can hide a "<" before the
            # DOCTYPE): the parsed tree's own doctype is the authority.
            if number == 1 and entry.getroottree().docinfo.doctype:
                raise _doctype_refused(path)
            attrs = {}
            for attr in entry.iter("{*}attr"):
                name = attr.get("name", "")
                if name in _READ:  # a real entry carries ~40 attributes; we use a dozen
                    values = [v.text.strip() for v in attr if v.text]
                    attrs[name] = [v for v in values if v]
            if not attrs.get("ENTPersonJointure") and not attrs.get("ENTStructureJointure"):
                for ident in entry.iter("{*}id"):  # <identifier><id>: the fallback key
                    if ident.text:
                        attrs["_id"] = [ident.text.strip()]
                    break
            entry.clear(keep_tail=False)
            # Drop the entries already read from their parent, or the tree grows to the file.
            parent = entry.getparent()
            if parent is not None:
                while entry.getprevious() is not None:
                    del parent[0]
            yield number, attrs
        if entries.root is not None and entries.root.getroottree().docinfo.doctype:
            raise _doctype_refused(path)  # a file without any entry, but with a DOCTYPE
    except etree.XMLSyntaxError as exc:
        raise ImportFileError(
            f"{path.name} est illisible (XML invalide à la ligne {exc.lineno or '?'})."
        ) from exc


def _doctype_refused(path):
    return ImportFileError(f"{path.name} : les déclarations DOCTYPE ne sont pas acceptées.")


# The attributes the directory uses (everything else in the export is skipped unread).
_READ = frozenset(
    (
        "ENTPersonJointure",
        "sn",
        "ENTPersonNomPatro",
        "givenName",
        "ENTPersonDateNaissance",
        "mail",
        "ENTPersonStructRattach",
        "ENTPersonFonctions",
        "ENTPersonProfils",
        "ENTEleveClasses",
        "ENTEleveGroupes",
        "ENTEleveNivFormation",
        "ENTEleveINE",
        "ENTElevePersRelEleve",
        "ENTEleveAutoriteParentale",
        "ENTAuxEnsClasses",
        "ENTAuxEnsGroupes",
        "PersEducNatPresenceDevantEleves",
        "ENTStructureJointure",
        "ENTStructureUAI",
        "ENTStructureNomCourant",
        "ENTStructureTypeStruct",
        "ou",
    )
)


def _first(attrs, name):
    values = attrs.get(name) or [""]
    return values[0]


def _split_ref(value):
    """ "STRUCT$2NDE3" -> ("STRUCT", "2NDE3"); a value without "$" has no structure."""
    struct, sep, rest = value.partition("$")
    return (struct, rest) if sep else ("", value)


def feed_files(directory: Path, warnings=None) -> dict[str, list[Path]]:
    """The most recent full export's files by category; ImportFileError when there are none.

    Older full exports and Delta files lying in the same folder are ignored (with a warning).
    """
    if not directory.is_dir():
        raise ImportFileError(f"Le dossier {directory} n'existe pas.")
    by_date = defaultdict(lambda: defaultdict(list))
    ignored = 0
    for path in sorted(directory.iterdir()):
        m = _FILE.search(path.name)
        if m and m.group(1) == "Complet":
            by_date[m.group(2)][m.group(3)].append(path)
        elif m:
            ignored += 1
    if not by_date:
        raise ImportFileError(
            f"Aucun fichier AAF complet (*_Complet_<date>_<Eleve|PersEducNat|PersRelEleve|"
            f"EtabEducNat>_NNNN.xml) dans {directory}."
        )
    latest = max(by_date)
    ignored += sum(len(p) for d, cats in by_date.items() if d != latest for p in cats.values())
    if ignored and warnings is not None:
        warnings.append(
            f"{ignored} fichier(s) ignoré(s) : seul l'export complet le plus récent ({latest}) "
            "est importé."
        )
    return by_date[latest]


class _FeedReader:
    def __init__(self, report):
        self.report = report
        self.structures = {}  # jointure or UAI -> Structure
        self.records = []
        self.covered_profiles = set()

    def reject(self, path, number, reason, name=""):
        self.report.reject(number, reason, name, file=path.name)

    # Structures come first: the people refer to them by jointure.
    def read_structures(self, paths):
        wanted = []
        for path in paths:
            for number, attrs in iter_entries(path):
                jointure = _first(attrs, "ENTStructureJointure") or _first(attrs, "_id")
                uai = _first(attrs, "ENTStructureUAI").upper()
                name = _first(attrs, "ENTStructureNomCourant") or _first(attrs, "ou")
                try:
                    uai_validator(uai)
                except ValidationError:
                    self.reject(path, number, f"UAI invalide « {uai} »", name)
                    continue
                wanted.append(
                    (jointure, uai, name or uai, _kind(_first(attrs, "ENTStructureTypeStruct")))
                )
        return wanted

    def load_known_structures(self):
        """ref (jointure or UAI) -> structure id."""
        for pk, uai, external_id in Structure.objects.values_list("id", "uai", "external_id"):
            self.structures[uai] = pk
            if external_id:
                self.structures[external_id] = pk

    def structure_of(self, ref):
        found = self.structures.get(ref)
        return found if found is not None else self.structures.get(ref.upper())

    def read_people(self, category, paths):
        for path in paths:
            for number, attrs in iter_entries(path):
                record = self.person(category, path, number, attrs)
                if record is not None:
                    self.records.append(record)

    def person(self, category, path, number, attrs):
        jointure = _first(attrs, "ENTPersonJointure") or _first(attrs, "_id")
        last = _first(attrs, "sn") or _first(attrs, "ENTPersonNomPatro")
        first = _first(attrs, "givenName")
        name = f"{first} {last}".strip()
        if not jointure:
            self.reject(path, number, "ENTPersonJointure manquant", name)
            return None
        self.report.listed_external_ids.add(jointure)
        if not last or not first:
            self.reject(path, number, "nom (sn) ou prénom (givenName) manquant", name)
            return None
        birth = None
        if _first(attrs, "ENTPersonDateNaissance"):
            try:
                birth = parse_date(_first(attrs, "ENTPersonDateNaissance"))
            except ValueError as exc:
                self.reject(path, number, str(exc), name)
                return None
        email = _first(attrs, "mail").lower()
        if email:
            try:
                validate_email(email)
            except ValidationError:
                email = ""
        record = PersonRecord(
            row=number,
            file=path.name,
            profile=Profile.PARENT,
            first_name=first,
            last_name=last,
            external_id=jointure,
            birth_date=birth,
            email=email,
        )
        unknown = set()
        for ref in attrs.get("ENTPersonStructRattach", []):
            s = self.structure_of(ref)
            if s is None:
                unknown.add(ref)
            else:
                record.structures.add(s)

        def refs(attr_name, into, levels=None):
            for value in attrs.get(attr_name, []):
                ref, item = _split_ref(value)
                s = self.structure_of(ref) if ref else None
                if s is None and not ref and len(record.structures) == 1:
                    s = next(iter(record.structures))
                if s is None:
                    unknown.add(ref or value)
                    continue
                record.structures.add(s)
                into.add((s, item[:64]))
                if levels is not None:
                    levels[(s, item[:64])] = _first(attrs, "ENTEleveNivFormation")[:64]

        if category == "Eleve":
            record.profile = Profile.ELEVE
            refs("ENTEleveClasses", record.classes, record.class_levels)
            refs("ENTEleveGroupes", record.groups)
            record.ine = _first(attrs, "ENTEleveINE").upper()[:11]
            parents = []
            for attr_name in ("ENTElevePersRelEleve", "ENTEleveAutoriteParentale"):
                for value in attrs.get(attr_name, []):
                    parts = value.split("$")
                    # "jointure$lien$resp. financier$resp. légal$contact$paiement": a person
                    # flagged neither legal nor financial responsible is only a contact.
                    if len(parts) >= 4 and parts[2] == "0" and parts[3] == "0":
                        continue
                    if parts[0] and parts[0] not in parents:
                        parents.append(parts[0])
            record.parent_external_ids = parents
        elif category == "PersEducNat":
            refs("ENTAuxEnsClasses", record.classes)
            refs("ENTAuxEnsGroupes", record.groups)
            for value in attrs.get("ENTPersonFonctions", []):
                ref, _ = _split_ref(value)
                s = self.structure_of(ref) if ref else None
                if s is not None:
                    record.structures.add(s)
            teaches = (
                _first(attrs, "PersEducNatPresenceDevantEleves").upper() == "O"
                or bool(record.classes)
                or any("ENS" in p or p.endswith("_3") for p in attrs.get("ENTPersonProfils", []))
            )
            record.profile = Profile.ENSEIGNANT if teaches else Profile.PERSONNEL
        if unknown and not record.structures:
            self.reject(path, number, f"établissement inconnu ({', '.join(sorted(unknown))})", name)
            return None
        if unknown:
            self.report.warnings.append(
                f"{path.name}, entrée {number} ({name}) : établissement(s) inconnu(s) ignoré(s) "
                f"({', '.join(sorted(unknown))})."
            )
        if category == "Eleve" and not record.structures:
            self.reject(path, number, "aucun établissement de rattachement", name)
            return None
        return record


def _read_file(category, path, structures):
    """Parse one people file into records (in a worker process, or in this one)."""
    reader = _FeedReader(ImportReport())
    reader.structures = structures
    reader.read_people(category, [path])
    return (
        reader.records,
        reader.report.rejected,
        reader.report.warnings,
        reader.report.listed_external_ids,
    )


def _read_files(jobs, reader, workers):
    """Results per file, in file order. The académie splits its export into many files; with
    workers > 1 they are parsed by forked processes (parsing is the CPU-bound half of an
    import). Forked children never touch the database connection they inherit."""
    if workers <= 1 or len(jobs) <= 1:
        return [_read_file(category, path, reader.structures) for category, path in jobs]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        futures = [
            pool.submit(_read_file, category, path, reader.structures) for category, path in jobs
        ]
        return [future.result() for future in futures]


def import_aaf(directory, *, dry_run=False, leavers=True, actor=None, workers=1) -> ImportReport:
    """Import a full AAF export: structures, accounts, classes, groups and parent–child links.

    People of the categories present in the export who are no longer listed become "sortant"
    (unless leavers=False). Everything happens in one transaction: a malformed file, met at
    any point, rolls back what was written before it, so it changes nothing. `workers`: files
    parsed in parallel processes (pays off only with idle cores: records are pickled back).
    """
    report = ImportReport()
    files = feed_files(Path(directory), report.warnings)
    reader = _FeedReader(report)

    profiles = set()
    if files.get("Eleve"):
        profiles.add(Profile.ELEVE)
    if files.get("PersEducNat"):
        profiles |= {Profile.ENSEIGNANT, Profile.PERSONNEL}
    if files.get("PersRelEleve"):
        profiles.add(Profile.PARENT)

    try:
        with transaction.atomic():
            etab_ids = _write_structures(
                reader.read_structures(files.get("EtabEducNat", [])), report
            )
            reader.load_known_structures()
            started = time.perf_counter()
            jobs = [
                (category, path)
                for category in ("PersEducNat", "Eleve", "PersRelEleve")
                for path in files.get(category, [])
            ]
            for records, rejected, warnings, listed in _read_files(jobs, reader, workers):
                reader.records += records
                report.rejected += rejected
                report.warnings += warnings
                report.listed_external_ids |= listed
            logger.debug("read %d files: %.2f s", len(jobs), time.perf_counter() - started)
            _parents_join_children_structures(reader.records)
            # The export is the authority on its structures (listed, or named by its people):
            # memberships elsewhere (a private school fed by its own CSV) are left alone.
            covered = set(etab_ids)
            for r in reader.records:
                covered |= r.structures
            # Leavers: only people of the structures this export lists (EtabEducNat); the
            # region imports one feed per académie, each silent about the others' people.
            scope = Scope(structures=covered, profiles=profiles, leaver_structures=set(etab_ids))
            apply_records(
                reader.records,
                source=SOURCE,
                scope=scope,
                full=leavers,
                report=report,
                actor=actor,
            )
            if dry_run:
                report.dry_run = True
                raise _Rollback
    except _Rollback:
        pass
    return report


class _Rollback(Exception):
    """Undoes a preview."""


def _write_structures(structures, report) -> set[int]:
    """Create or update the export's structures (keyed on jointure, else UAI); their ids."""
    by_uai = {s.uai: s for s in Structure.objects.all()}
    by_ext = {s.external_id: s for s in by_uai.values() if s.external_id}
    listed = set()
    for jointure, uai, name, kind in structures:
        s = by_ext.get(jointure) or by_uai.get(uai)
        if s is None:
            s = Structure.objects.create(
                uai=uai, name=name[:200], kind=kind, external_id=jointure or None
            )
            report.structures_created += 1
            by_uai[uai] = s
            if jointure:
                by_ext[jointure] = s
            listed.add(s.pk)
            continue
        listed.add(s.pk)
        changes = {"name": name[:200], "kind": kind, "uai": uai}
        if jointure:
            changes["external_id"] = jointure
        if any(getattr(s, k) != v for k, v in changes.items()):
            for k, v in changes.items():
                setattr(s, k, v)
            s.save(update_fields=list(changes))
    return listed


def _parents_join_children_structures(records):
    """A parent belongs to the structures of the children who list him (AAF gives him none)."""
    by_ext = {r.external_id: r for r in records if r.profile == Profile.PARENT}
    for r in records:
        if r.profile != Profile.ELEVE:
            continue
        for ext in r.parent_external_ids:
            parent = by_ext.get(ext)
            if parent is not None:
                parent.structures |= r.structures
