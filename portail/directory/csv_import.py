"""The region's CSV files of people: read, check every row, then create the accounts all at once.

    rows = parse_people(data, profile)        # ImportRejected lists every bad row, nothing created
    accounts = create_people(rows, structure, profile)   # one transaction
    write_letters(accounts, stream)           # identifiers and activation codes, for the letters

The files come from spreadsheets: `;`-separated, UTF-8 with or without BOM, or the Windows
"ANSI" code page; headers such as "Prénom*;Nom*;Date de naissance*;Classes*" are matched without
regard to case, accents, spaces or `*`. Line numbers are the file's own (the header is line 1).
"""

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from django.db import transaction
from django.utils import timezone

from portail.accounts.identifiers import identifier_part
from portail.accounts.models import Profile
from portail.accounts.provisioning import create_account

from .models import SchoolClass

DELIMITER = ";"
NAME_MAX = 150  # User.first_name / last_name
CLASS_MAX = 64  # SchoolClass.name
CLASS_SEPARATOR = ","  # several classes in one cell: "2nde 3, Latin"


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # as shown in messages and in the output file
    headers: frozenset[str]  # normalized header names that mean this column


COLUMNS = [
    Column("first_name", "Prénom", frozenset({"prenom", "prenoms"})),
    Column("last_name", "Nom", frozenset({"nom", "nomdefamille"})),
    Column("birth_date", "Date de naissance", frozenset({"datedenaissance", "datenaissance"})),
    Column("classes", "Classes", frozenset({"classes", "classe"})),
]

# Pupils are identified by their birth date as well, and always belong to a class.
REQUIRED = {
    Profile.ELEVE: ("first_name", "last_name", "birth_date", "classes"),
    Profile.PARENT: ("first_name", "last_name"),
    Profile.ENSEIGNANT: ("first_name", "last_name"),
    Profile.PERSONNEL: ("first_name", "last_name"),
}

LETTER_HEADER = ["Nom", "Prénom", "Classes", "Identifiant", "Code d'activation"]


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self):
        return f"Ligne {self.line} : {self.message}"


class ImportRejected(Exception):
    """The file cannot be imported; `errors` names every bad row and why (in French)."""

    def __init__(self, errors: list[RowError]):
        super().__init__("\n".join(map(str, errors)))
        self.errors = errors


@dataclass
class PersonRow:
    line: int
    first_name: str
    last_name: str
    birth_date: date | None = None
    classes: list[str] = field(default_factory=list)


@dataclass
class ImportedAccount:
    row: PersonRow
    user: object
    code: str  # in clear, for the letter; never stored
    classes: list[str] = field(default_factory=list)  # the school's spelling of them


# --- Reading --------------------------------------------------------------------------------


def decode(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), else Windows-1252, else ISO-8859-1.

    Excel's "CSV (séparateur : point-virgule)" writes the ANSI code page, Windows-1252: a superset
    of ISO-8859-1's printable characters that also has œ and ’, common in French names. The
    last fallback decodes any byte, so a file is never refused for its charset alone.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]  # even when the rest is not valid UTF-8
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def normalize_header(name: str) -> str:
    """ "  Date de naissance* " -> "datedenaissance": no case, accents, spaces, `*` or punctuation."""
    decomposed = unicodedata.normalize("NFD", name.lower())
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _clean(value: str) -> str:
    return " ".join(value.split())


def read_table(data: bytes, columns: Iterable[Column], required: Iterable[str]):
    """The file's rows as (line, {column key: cell}) after checking its header.

    Unknown columns are ignored (the region's exports carry more than we need). Raises
    ImportRejected for a header without a required column, and for unreadable rows.
    """
    columns = list(columns)
    text = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITER, strict=True)
    errors = []
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ImportRejected([RowError(1, f"en-tête illisible ({exc}).")]) from None
    if not header or not any(cell.strip() for cell in header):
        raise ImportRejected([RowError(1, "le fichier est vide ou n'a pas de ligne d'en-tête.")])

    positions = {}
    for index, cell in enumerate(header):
        normalized = normalize_header(cell)
        for column in columns:
            if normalized in column.headers:
                if column.key in positions:
                    errors.append(RowError(1, f"la colonne « {column.label} » apparaît deux fois."))
                positions[column.key] = index
    labels = {c.key: c.label for c in columns}
    missing = [labels[key] for key in required if key not in positions]
    if missing:
        hint = ""
        if len(header) == 1 and ("," in header[0] or "\t" in header[0]):
            hint = " Les colonnes doivent être séparées par des points-virgules (;)."
        names = ", ".join(f"« {m} »" for m in missing)
        errors.append(RowError(1, f"colonne obligatoire absente : {names}.{hint}"))
    if errors:
        raise ImportRejected(errors)

    rows = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error:
            errors.append(RowError(reader.line_num, "ligne illisible (guillemet non refermé ?)."))
            break  # the reader cannot resynchronise after a broken quote
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, often left at the end by spreadsheets
        extra = [c for c in cells[len(header) :] if c.strip()]
        if extra:
            errors.append(
                RowError(
                    line,
                    f"la ligne a {len(cells)} colonnes, l'en-tête n'en a que {len(header)} "
                    "(un point-virgule en trop ?).",
                )
            )
            continue
        rows.append(
            (line, {key: cells[i] if i < len(cells) else "" for key, i in positions.items()})
        )
    if errors:
        raise ImportRejected(errors)
    return rows


# --- Checking -------------------------------------------------------------------------------


def _check_name(value: str, label: str, problems: list[str]) -> str:
    value = _clean(value)
    if not value:
        problems.append(f"le {label} est vide.")
    elif len(value) > NAME_MAX:
        problems.append(f"le {label} dépasse {NAME_MAX} caractères.")
    elif not identifier_part(value):
        problems.append(
            f"le {label} « {value} » ne contient aucune lettre utilisable pour l'identifiant "
            "(a à z sans accent, chiffres)."
        )
    return value


def parse_birth_date(value: str, today: date) -> date:
    """ "dd/mm/yyyy" (a day or month may have one digit); ValueError with a French reason."""
    match = re.fullmatch(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})", value)
    if not match:
        raise ValueError(f"la date de naissance « {value} » n'est pas au format jj/mm/aaaa.")
    day, month, year = map(int, match.groups())
    try:
        born = date(year, month, day)
    except ValueError:
        raise ValueError(f"la date de naissance « {value} » n'existe pas.") from None
    if born > today:
        raise ValueError(f"la date de naissance « {value} » est dans le futur.")
    if born.year < 1900:
        raise ValueError(f"la date de naissance « {value} » est invraisemblable.")
    return born


def parse_people(data: bytes, profile: str, *, today: date | None = None) -> list[PersonRow]:
    """Every row checked; ImportRejected lists all the bad ones (nothing is created here)."""
    today = today or timezone.localdate()
    required = REQUIRED[profile]
    errors, people = [], []
    for line, cells in read_table(data, COLUMNS, required):
        problems = []
        first = _check_name(cells.get("first_name", ""), "prénom", problems)
        last = _check_name(cells.get("last_name", ""), "nom", problems)

        birth_date = None
        raw_date = cells.get("birth_date", "").strip()
        if raw_date:
            try:
                birth_date = parse_birth_date(raw_date, today)
            except ValueError as exc:
                problems.append(str(exc))
        elif "birth_date" in required:
            problems.append("la date de naissance est vide.")

        classes = [_clean(c) for c in cells.get("classes", "").split(CLASS_SEPARATOR) if c.strip()]
        if not classes and "classes" in required:
            problems.append("la classe est vide.")
        for name in classes:
            if len(name) > CLASS_MAX:
                problems.append(f"le nom de classe « {name} » dépasse {CLASS_MAX} caractères.")

        if problems:
            # One line per row, every reason in it: the référent fixes the row in one go.
            errors.append(RowError(line, " ; ".join(p.rstrip(".") for p in problems) + "."))
        else:
            people.append(PersonRow(line, first, last, birth_date, list(dict.fromkeys(classes))))
    if errors:
        raise ImportRejected(errors)
    if not people:
        raise ImportRejected([RowError(2, "le fichier ne contient aucune personne à importer.")])
    return people


# --- Creating -------------------------------------------------------------------------------


@transaction.atomic
def create_people(rows: list[PersonRow], structure, profile: str) -> list[ImportedAccount]:
    """Create every account (identifier, activation code) and missing class, or none."""
    # Classes match the school's existing ones whatever their case ("2NDE 3" is "2nde 3").
    known = {c.name.casefold(): c for c in SchoolClass.objects.filter(structure=structure)}
    created = []
    for row in rows:
        classes = []
        for name in row.classes:
            if name.casefold() not in known:
                known[name.casefold()] = SchoolClass.objects.create(structure=structure, name=name)
            classes.append(known[name.casefold()])
        user, code = create_account(
            row.first_name, row.last_name, profile, structures=[structure], classes=classes
        )
        created.append(ImportedAccount(row, user, code, [c.name for c in classes]))
    return created


def import_people(data: bytes, structure, profile: str) -> list[ImportedAccount]:
    return create_people(parse_people(data, profile), structure, profile)


# --- The letters file -----------------------------------------------------------------------


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text, never runs: OWASP "CSV injection" prefixes a quote."""
    value = "" if value is None else str(value)
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def write_letters(accounts: Iterable[ImportedAccount], stream) -> None:
    """`;`-separated rows for the letters; the caller opens `stream` as UTF-8 with BOM (Excel)."""
    writer = csv.writer(stream, delimiter=DELIMITER, lineterminator="\r\n")
    writer.writerow(LETTER_HEADER)
    for account in accounts:
        user = account.user
        writer.writerow(
            map(
                csv_cell,
                [
                    user.last_name,
                    user.first_name,
                    ", ".join(account.classes),
                    user.identifier,
                    account.code,
                ],
            )
        )
