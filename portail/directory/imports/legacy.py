"""Accounts migrated from a former ENT (the seed's ENT77): identifier and password hash kept.

The file is a ";"-separated CSV (charsets as the region's CSV):
    Identifiant*;Empreinte*;Prénom*;Nom*;Profil*;Date de naissance;Classes;Courriel;Id
"Empreinte" is the stored hash: bcrypt ($2a$/$2b$/$2y$), unsalted MD5 hex or unsalted SHA-256
hex. Accounts arrive ACTIVE (they skip the first connection); Django rehashes the password with
Argon2id at the next successful login (see accounts.hashers). Re-importing the same file changes
no identifier, password or email: only names, birth date and classes follow the file.

MD5 and SHA-256 digests are never stored bare: each new account's digest is wrapped in Argon2id
(accounts.hashers.wrap_legacy) before it is written, so a dump shows no unsalted digest. That
costs one Argon2id computation per new account (none for accounts already there, none in a dry
run); they run on every core (argon2 releases the GIL).
"""

import csv
import io
import os
from concurrent.futures import ThreadPoolExecutor

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from portail.accounts.hashers import legacy_encoded_password, wrap_legacy
from portail.accounts.identifiers import fold_identifier
from portail.accounts.models import Profile, User, identifier_validator

from .engine import PersonRecord, Scope, apply_records
from .report import ImportFileError, ImportReport
from .text import decode, fold_header, parse_date, split_list

_COLUMNS = {
    "identifiant": "identifier",
    "login": "identifier",
    "empreinte": "hash",
    "empreintedumotdepasse": "hash",
    "motdepasse": "hash",
    "hash": "hash",
    "prenom": "first_name",
    "nom": "last_name",
    "profil": "profile",
    "datedenaissance": "birth_date",
    "classes": "classes",
    "classe": "classes",
    "courriel": "email",
    "email": "email",
    "id": "external_id",
}
_REQUIRED = {
    "identifier": "Identifiant",
    "hash": "Empreinte",
    "first_name": "Prénom",
    "last_name": "Nom",
    "profile": "Profil",
}
_PROFILES = {fold_header(label): value for value, label in Profile.choices} | {
    v: v for v in Profile.values
}


def import_legacy_accounts(
    data: bytes, *, structure, source="ent77", dry_run=False, actor=None
) -> ImportReport:
    text = decode(data)
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";" if ";" in first_line else ",")
    header = [_COLUMNS.get(fold_header(h)) for h in next(reader)]
    missing = [label for key, label in _REQUIRED.items() if key not in header]
    if missing:
        raise ImportFileError("Colonnes obligatoires absentes : " + ", ".join(missing) + ".")
    report = ImportReport()
    records = []
    try:
        rows = [(reader.line_num, values) for values in reader if any(v.strip() for v in values)]
    except csv.Error as exc:
        raise ImportFileError(f"Le fichier est illisible : {exc}.") from exc
    for line, values in rows:
        row = {}
        for key, value in zip(header, values, strict=False):
            if key and value.strip() and key not in row:
                row[key] = value.strip()
        name = f"{row.get('first_name', '')} {row.get('last_name', '')}".strip()
        problems = [f"{label} manquant" for key, label in _REQUIRED.items() if not row.get(key)]
        identifier = fold_identifier(row.get("identifier", ""))
        if row.get("identifier"):
            try:
                identifier_validator(identifier)
                if len(identifier) > 64:
                    raise ValidationError("too long")
            except ValidationError:
                problems.append(f"identifiant invalide « {row['identifier']} »")
        encoded = legacy_encoded_password(row.get("hash", "")) if row.get("hash") else None
        if row.get("hash") and encoded is None:
            problems.append("empreinte de mot de passe non reconnue (bcrypt, MD5 ou SHA-256)")
        profile = _PROFILES.get(fold_header(row.get("profile", "")))
        if row.get("profile") and profile is None:
            problems.append(f"profil inconnu « {row['profile']} »")
        birth = None
        if row.get("birth_date"):
            try:
                birth = parse_date(row["birth_date"])
            except ValueError as exc:
                problems.append(str(exc))
        email = row.get("email", "").lower()
        if email:
            try:
                validate_email(email)
            except ValidationError:
                problems.append(f"Adresse de messagerie invalide « {email} »")
        if problems:
            report.reject(line, " ; ".join(problems) + ".", name)
            continue
        classes = split_list(row.get("classes", ""))
        records.append(
            PersonRecord(
                row=line,
                profile=profile,
                first_name=row["first_name"],
                last_name=row["last_name"],
                external_id=row.get("external_id"),
                birth_date=birth,
                email=email,
                structures={structure.pk},
                classes={(structure.pk, c[:64]) for c in classes},
                identifier=identifier,
                encoded_password=encoded,
            )
        )
    if not dry_run:
        _wrap_new_accounts_hashes(records)
    return apply_records(
        records,
        source=source,
        scope=Scope(structures={structure.pk}, profiles=set()),
        dry_run=dry_run,
        report=report,
        actor=actor,
    )


def _wrap_new_accounts_hashes(records):
    """Wrap the legacy digests of the accounts this import will create (issue 7 §4).

    Only new accounts use `encoded_password` (a re-import never changes a password), and a new
    account's identifier cannot exist yet: the rows whose identifier is taken are left as they
    are, saving an Argon2id computation each.
    """
    taken = set(
        User.objects.filter(identifier__in=[r.identifier for r in records]).values_list(
            "identifier", flat=True
        )
    )
    todo = [r for r in records if r.identifier not in taken and r.encoded_password]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        wrapped = pool.map(wrap_legacy, [r.encoded_password for r in todo])
        for record, encoded in zip(todo, wrapped, strict=True):
            record.encoded_password = encoded
