"""The region's CSV templates, one per profile, as its console offers them.

Élèves      Prénom*;Nom*;Date de naissance*;Classes*   (optional: Id;INE;Niveau;Groupes;Courriel)
Parents     Nom*;Prénom*;Adresse;Code postal;Ville;Pays;Courriel;Téléphone;
            Nom de l'élève;Prénom de l'élève;Classes de l'élève   (the child triple once per child;
            an "Id de l'élève" column in the triple is used where given)
Enseignants Prénom*;Nom*;date de naissance;fonction;telephone;telephonetravail;email;adresse;cp;
Personnels  ville;pays;classe;classe…   (the "classe" column repeated)

Headers are matched without case, accents, spaces, apostrophes or "*". A file that cannot be read
(charset, separator, missing required columns) raises ImportFileError and changes nothing; a bad
row is rejected with its line number and reason, the others are imported.
"""

import csv
import io
import re
from collections import defaultdict

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from portail.accounts.models import Profile, User

from ..models import SchoolClass
from .engine import PersonRecord, Scope, apply_records, name_key
from .report import ImportFileError, ImportReport
from .text import decode, fold_header, parse_date, split_list

# Folded header -> field; several spellings of the same column.
_ALIASES = {
    "prenom": "first_name",
    "nom": "last_name",
    "datedenaissance": "birth_date",
    "datenaissance": "birth_date",
    "classes": "classes",
    "classe": "classes",
    "id": "external_id",
    "identifiant": "external_id",
    "ine": "ine",
    "niveau": "level",
    "groupes": "groups",
    "groupe": "groups",
    "courriel": "email",
    "email": "email",
    "mail": "email",
    "adressedemessagerie": "email",
    # The child of a parent row (repeated once per child).
    "nomdeleleve": "child_last_name",
    "prenomdeleleve": "child_first_name",
    "classesdeleleve": "child_classes",
    "classedeleleve": "child_classes",
    "iddeleleve": "child_id",
}

REQUIRED = {
    Profile.ELEVE: {
        "first_name": "Prénom",
        "last_name": "Nom",
        "birth_date": "Date de naissance",
        "classes": "Classes",
    },
    Profile.PARENT: {"last_name": "Nom", "first_name": "Prénom"},
    Profile.ENSEIGNANT: {"first_name": "Prénom", "last_name": "Nom"},
    Profile.PERSONNEL: {"first_name": "Prénom", "last_name": "Nom"},
}

# « Classes manquantes. », not « Classes manquant. »: each field's own agreement.
MISSING = {
    "first_name": "Prénom manquant",
    "last_name": "Nom manquant",
    "birth_date": "Date de naissance manquante",
    "classes": "Classes manquantes",
}

_SEPARATOR_NAMES = {";": "point-virgule", ",": "virgule", "\t": "caractère de tabulation"}
_CHILD_FIELDS = ("child_last_name", "child_first_name", "child_classes", "child_id")
_INE = re.compile(r"^([0-9]{10}[A-Z]|[0-9]{9}[A-Z]{2})$")


def _rows(text: str):
    """(header fields, [(line number, {field: [values…], "children": [{…}]})])."""
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first_line else "\t" if "\t" in first_line else ","
    # strict: an unclosed quote is an error, not a cell that swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ImportFileError("Le fichier est vide ou illisible.") from exc
    columns = [_ALIASES.get(fold_header(h)) for h in header]
    rows = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            row = defaultdict(list)
            children = []
            for column, value in zip(columns, values, strict=False):
                if column is None:
                    continue
                value = value.strip()
                if column in _CHILD_FIELDS:
                    # A new child starts at each "Nom de l'élève" (or at a field seen twice).
                    if column == "child_last_name" or not children or column in children[-1]:
                        children.append({})
                    children[-1][column] = value
                elif value:
                    row[column].append(value)
            row["children"] = [c for c in children if any(c.values())]
            if any(v.strip() for v in values[len(header) :]):
                # A stray separator shifts the cells: refuse the row rather than misread it.
                row["extra"] = [
                    f"la ligne a {len(values)} colonnes, l'en-tête n'en a que {len(header)} "
                    f"(un {_SEPARATOR_NAMES.get(delimiter, 'séparateur')} en trop ?)"
                ]
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise ImportFileError(
            f"Le fichier est illisible à la ligne {reader.line_num} (guillemet non refermé ?)."
        ) from exc
    return set(filter(None, columns)), rows


def read_region_csv(data: bytes, *, structure, profile: str):
    """Parse and validate; returns (records, report with the rejected rows)."""
    text = decode(data)
    present, rows = _rows(text)
    missing = [label for key, label in REQUIRED[profile].items() if key not in present]
    if missing:
        raise ImportFileError(
            "Colonnes obligatoires absentes : "
            + ", ".join(missing)
            + ". Vérifiez que le fichier suit le modèle de la région (séparateur point-virgule)."
        )
    report = ImportReport()
    pupils = _PupilIndex(structure) if profile == Profile.PARENT else None
    # "2NDE 3" is the school's "2nde 3": a class keeps its first spelling, whatever the case.
    spellings = {
        n.casefold(): n
        for n in SchoolClass.objects.filter(structure=structure).values_list("name", flat=True)
    }

    def spelling(name):
        return spellings.setdefault(name.casefold(), name)

    records = []
    for line, row in rows:
        first = " ".join(row.get("first_name", [])[:1])
        last = " ".join(row.get("last_name", [])[:1])
        name = f"{first} {last}".strip()
        problems = list(row.get("extra", []))
        for key in REQUIRED[profile]:
            if not row.get(key):
                problems.append(MISSING[key])
        birth_date = None
        if row.get("birth_date"):
            try:
                birth_date = parse_date(row["birth_date"][0])
            except ValueError as exc:
                problems.append(str(exc))
        email = (row.get("email") or [""])[0]
        if email:
            try:
                validate_email(email)
            except ValidationError:
                problems.append(f"Adresse de messagerie invalide « {email} »")
        ine = (row.get("ine") or [""])[0].upper()
        if ine and not _INE.match(ine):
            problems.append(f"INE invalide « {ine} »")
        classes = {spelling(c[:64]) for cell in row.get("classes", []) for c in split_list(cell)}
        groups = {g for cell in row.get("groups", []) for g in split_list(cell)}
        child_ids = set()
        if pupils is not None:
            if not row["children"]:
                problems.append("aucun élève indiqué pour ce responsable")
            for child in row["children"]:
                found, why = pupils.find(child)
                if found is None:
                    problems.append(why)
                else:
                    child_ids.add(found)
        if problems:
            report.reject(line, " ; ".join(p.rstrip(".") for p in problems) + ".", name)
            if row.get("external_id"):
                report.listed_external_ids.add(row["external_id"][0])
            else:
                report.listed_names.add((name_key(last), name_key(first)))
            continue
        level = (row.get("level") or [""])[0]
        records.append(
            PersonRecord(
                row=line,
                profile=profile,
                first_name=first,
                last_name=last,
                external_id=(row.get("external_id") or [None])[0],
                birth_date=birth_date,
                email=email.strip().lower(),
                ine=ine,
                structures={structure.pk},
                classes={(structure.pk, c) for c in classes},
                class_levels={(structure.pk, c): level for c in classes} if level else {},
                groups={(structure.pk, g[:64]) for g in groups},
                child_ids=child_ids,
            )
        )
    return records, report


class _PupilIndex:
    """The structure's pupils, to link a parent row to its children by names and class (or Id)."""

    def __init__(self, structure):
        self.by_names = defaultdict(list)
        self.by_id = {}
        pupils = User.objects.filter(profile=Profile.ELEVE, structures=structure)
        classes = defaultdict(set)
        for uid, class_name in User.classes.through.objects.filter(
            user__in=pupils, schoolclass__structure=structure
        ).values_list("user_id", "schoolclass__name"):
            classes[uid].add(name_key(class_name))
        for uid, first, last, ext in pupils.values_list(
            "id", "first_name", "last_name", "external_id"
        ):
            self.by_names[(name_key(last), name_key(first))].append((uid, classes[uid]))
            if ext:
                self.by_id[ext] = uid

    def find(self, child):
        last = child.get("child_last_name", "")
        first = child.get("child_first_name", "")
        class_cell = child.get("child_classes", "")
        who = f"{first} {last}".strip() or "?"
        if child.get("child_id") and child["child_id"] in self.by_id:
            return self.by_id[child["child_id"]], ""
        if not last or not first:
            return None, f"nom ou prénom de l'élève manquant ({who})"
        candidates = self.by_names.get((name_key(last), name_key(first)), [])
        wanted = {name_key(c) for c in split_list(class_cell)}
        if wanted:
            candidates = [(uid, cls) for uid, cls in candidates if cls & wanted]
        if len(candidates) == 1:
            return candidates[0][0], ""
        where = f" en {class_cell}" if class_cell else ""
        if not candidates:
            return None, f"élève introuvable : {who}{where}"
        return None, f"plusieurs élèves {who}{where} : précisez la classe ou l'Id de l'élève"


def import_region_csv(
    data: bytes, *, structure, profile: str, full=False, dry_run=False, actor=None
) -> ImportReport:
    """Import one of the region's CSV files for `structure`. `full`: the file lists every
    account of this profile in the structure, and those absent become "sortant"."""
    records, report = read_region_csv(data, structure=structure, profile=profile)
    return apply_records(
        records,
        source=f"csv:{structure.uai}",
        scope=Scope(structures={structure.pk}, profiles={profile}),
        full=full,
        dry_run=dry_run,
        report=report,
        actor=actor,
    )


# The file to start from, per profile: exactly the columns read_region_csv reads (required ones
# first), and one example row that imports cleanly. Offered by the console's import page.
TEMPLATES = {
    Profile.ELEVE: (
        [
            "Prénom",
            "Nom",
            "Date de naissance",
            "Classes",
            "Id",
            "INE",
            "Niveau",
            "Groupes",
            "Courriel",
        ],
        ["Léa", "Petit", "04/05/2013", "6e B", "", "", "6e", "Latin", ""],
    ),
    Profile.PARENT: (
        [
            "Nom",
            "Prénom",
            "Courriel",
            "Nom de l'élève",
            "Prénom de l'élève",
            "Classes de l'élève",
            "Id de l'élève",
        ],
        ["Petit", "Marc", "marc.petit@example.org", "Petit", "Léa", "6e B", ""],
    ),
    Profile.ENSEIGNANT: (
        ["Prénom", "Nom", "Date de naissance", "Courriel", "Classes", "Groupes"],
        ["Claire", "Moreau", "12/09/1980", "claire.moreau@example.org", "6e B, 5e A", ""],
    ),
    Profile.PERSONNEL: (
        ["Prénom", "Nom", "Date de naissance", "Courriel"],
        ["Paul", "Roy", "03/02/1975", "paul.roy@example.org"],
    ),
}


def template_csv(profile: str) -> bytes:
    """UTF-8 with BOM and « ; » as a French Excel opens and saves it, CRLF line ends."""
    header, example = TEMPLATES[profile]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerow(example)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
