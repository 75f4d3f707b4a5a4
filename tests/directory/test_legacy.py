"""Accounts migrated from a former ENT: hashes kept, first connection skipped, Argon2id at login."""

import hashlib

import bcrypt
import pytest
from django.core.management import call_command

from portail.accounts.models import Profile, State, Token, User
from portail.directory.imports.legacy import import_legacy_accounts
from portail.directory.models import Structure

PASSWORD = "Vieux-mot-de-passe-77"


def _bcrypt(prefix):
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    return prefix + hashed[4:]  # $2a$, $2b$ and $2y$ are the same algorithm


LEGACY_HASHES = {
    "bcrypt_2a": lambda: _bcrypt("$2a$"),
    "bcrypt_2b": lambda: _bcrypt("$2b$"),
    "bcrypt_2y": lambda: _bcrypt("$2y$"),
    "md5": lambda: hashlib.md5(PASSWORD.encode()).hexdigest(),  # noqa: S324 (the legacy form)
    "md5_upper": lambda: hashlib.md5(PASSWORD.encode()).hexdigest().upper(),  # noqa: S324
    "sha256": lambda: hashlib.sha256(PASSWORD.encode()).hexdigest(),
}


@pytest.fixture
def college(db):
    return Structure.objects.create(uai="0771111A", name="Collège de Melun")


def _file(*rows):
    header = "Identifiant;Empreinte;Prénom;Nom;Profil;Date de naissance;Classes;Courriel;Id\n"
    return (header + "".join(";".join(r) + "\n" for r in rows)).encode("utf-8")


# MD5 and SHA-256 are stored wrapped in Argon2id (issue 7 §4); bcrypt as it is.
LEGACY_STORED_FORMS = {
    "bcrypt_2a": "legacy_bcrypt",
    "bcrypt_2b": "legacy_bcrypt",
    "bcrypt_2y": "legacy_bcrypt",
    "md5": "argon2_legacy_md5",
    "md5_upper": "argon2_legacy_md5",
    "sha256": "argon2_legacy_sha256",
}


@pytest.mark.parametrize("form", list(LEGACY_HASHES))
def test_legacy_hash_opens_the_account_then_becomes_argon2id(client, college, form):
    data = _file(
        [
            "lea.martin",
            LEGACY_HASHES[form](),
            "Léa",
            "Martin",
            "Élève",
            "01/02/2011",
            "4B",
            "",
            "77-1",
        ]
    )
    report = import_legacy_accounts(data, structure=college)
    assert report.rejected == [] and [a.identifier for a in report.created] == ["lea.martin"]
    user = User.objects.get(identifier="lea.martin")
    assert user.state == State.ACTIVE  # skips the first connection
    assert user.profile == Profile.ELEVE
    assert not Token.objects.filter(user=user).exists()
    assert user.password.split("$")[0] == LEGACY_STORED_FORMS[form]

    wrong = client.post("/auth/login", {"identifier": "lea.martin", "password": "autre chose"})
    assert wrong.status_code == 200
    user.refresh_from_db()
    assert user.password.split("$")[0] == LEGACY_STORED_FORMS[form]

    response = client.post("/auth/login", {"identifier": "lea.martin", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password(PASSWORD)
    client.post("/auth/logout")
    again = client.post("/auth/login", {"identifier": "lea.martin", "password": PASSWORD})
    assert again.status_code == 302


def test_reimport_never_changes_identifier_password_or_email(college):
    data = _file(
        [
            "lea.martin",
            LEGACY_HASHES["md5"](),
            "Léa",
            "Martin",
            "eleve",
            "",
            "4B",
            "lea@example.org",
            "",
        ]
    )
    import_legacy_accounts(data, structure=college)
    user = User.objects.get(identifier="lea.martin")
    user.set_password("cheval orange batterie agrafe")
    user.save()
    changed = _file(
        [
            "lea.martin",
            LEGACY_HASHES["sha256"](),
            "Léa",
            "Martin-Roux",
            "eleve",
            "",
            "3B",
            "x@example.org",
            "",
        ]
    )
    report = import_legacy_accounts(changed, structure=college)
    assert report.created == [] and report.updated == 1
    user.refresh_from_db()
    assert user.last_name == "Martin-Roux"
    assert user.email == "lea@example.org"
    assert user.check_password("cheval orange batterie agrafe")
    assert list(user.classes.values_list("name", flat=True)) == ["3B"]


def test_bad_legacy_rows_are_rejected(college):
    User.objects.create_user(
        "pris.deja", None, first_name="Pris", last_name="Deja", profile="parent"
    )
    data = _file(
        ["pris.deja", LEGACY_HASHES["md5"](), "Pris", "Deja", "parent", "", "", "", ""],
        ["sans.hash", "pas-une-empreinte", "Sans", "Hash", "parent", "", "", "", ""],
        ["ok.compte", LEGACY_HASHES["sha256"](), "Ok", "Compte", "Martien", "", "", "", ""],
    )
    report = import_legacy_accounts(data, structure=college)
    reasons = {r.row: r.reason for r in report.rejected}
    assert "déjà utilisé" in reasons[2]
    assert "empreinte de mot de passe non reconnue" in reasons[3]
    assert "profil inconnu « Martien »" in reasons[4]
    assert report.created == []


def test_import_legacy_command(college, tmp_path, capsys):
    path = tmp_path / "ent77.csv"
    path.write_bytes(
        _file(
            [
                "paul.durand",
                LEGACY_HASHES["bcrypt_2y"](),
                "Paul",
                "Durand",
                "Enseignant",
                "",
                "",
                "",
                "",
            ]
        )
    )
    call_command("import_legacy", str(path), "--structure", "0771111A")
    assert "Comptes créés : 1" in capsys.readouterr().out
    assert User.objects.get(identifier="paul.durand").check_password(PASSWORD)


def test_a_wrong_password_costs_one_argon2_as_for_any_account(monkeypatch):
    """Timing must not single out migrated accounts (issue 2: same timing, account or not)."""
    from portail.accounts.hashers import (
        LegacyBcryptPasswordHasher,
        LegacyMD5PasswordHasher,
        PortailArgon2PasswordHasher,
        legacy_encoded_password,
    )

    calls = []
    real = PortailArgon2PasswordHasher.encode
    monkeypatch.setattr(
        PortailArgon2PasswordHasher,
        "encode",
        lambda self, pw, salt: calls.append(pw) or real(self, pw, salt),
    )
    md5 = legacy_encoded_password(LEGACY_HASHES["md5"]())
    assert LegacyMD5PasswordHasher().verify(PASSWORD, md5) and calls == []
    assert not LegacyMD5PasswordHasher().verify("faux", md5) and len(calls) == 1
    bcrypt_form = legacy_encoded_password(LEGACY_HASHES["bcrypt_2y"]())
    assert not LegacyBcryptPasswordHasher().verify("faux", bcrypt_form) and len(calls) == 2
