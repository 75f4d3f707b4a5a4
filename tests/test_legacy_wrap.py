"""Legacy MD5/SHA-256 hashes are wrapped in Argon2id at import and by migration (issue 7 §4)."""

import hashlib
import importlib
import io

import argon2
import pytest
from django.apps import apps
from django.core.management import call_command

from portail.accounts.models import User
from portail.directory.imports.legacy import import_legacy_accounts
from portail.directory.models import Structure
from tests.helpers import STRONG_PASSWORD, account

pytestmark = pytest.mark.django_db

PASSWORD = "Vieux-mot-de-passe-77"
MD5 = hashlib.md5(PASSWORD.encode()).hexdigest()  # noqa: S324 (the legacy ENT's form)
SHA256 = hashlib.sha256(PASSWORD.encode()).hexdigest()
HEADER = "Identifiant;Empreinte;Prénom;Nom;Profil;Date de naissance;Classes;Courriel;Id\n"

wrap_migration = importlib.import_module("portail.accounts.migrations.0007_wrap_legacy_hashes")


@pytest.fixture
def college(db):
    return Structure.objects.create(uai="0771111A", name="Collège de Melun")


@pytest.fixture
def argon2_computations(monkeypatch):
    """Count Argon2 computations (hash or verify) where Django and argon2-cffi make them."""
    count = []
    for module, name in [
        (argon2.low_level, "hash_secret"),
        (argon2._password_hasher, "verify_secret"),
    ]:
        real = getattr(module, name)

        def counting(*args, _real=real, **kwargs):
            count.append(1)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    return count


def dump_text():
    out = io.StringIO()
    call_command("dumpdata", "accounts", stdout=out)
    return out.getvalue().lower()


def login(client, identifier, password):
    return client.post("/auth/login", {"identifier": identifier, "password": password})


def test_import_stores_no_bare_legacy_digest(college):
    rows = [
        ["lea.martin", MD5.upper(), "Léa", "Martin", "Élève", "", "", "", "77-1"],
        ["paul.durand", SHA256, "Paul", "Durand", "Parent", "", "", "", "77-2"],
    ]
    data = (HEADER + "".join(";".join(r) + "\n" for r in rows)).encode()
    report = import_legacy_accounts(data, structure=college)
    assert len(report.created) == 2
    dump = dump_text()
    assert MD5 not in dump and SHA256 not in dump and "legacy_md5$$" not in dump
    assert User.objects.get(identifier="lea.martin").password.startswith("argon2_legacy_md5$")
    assert User.objects.get(identifier="paul.durand").password.startswith("argon2_legacy_sha256$")


def test_a_dry_run_wraps_nothing(college, argon2_computations):
    data = (HEADER + f"lea.martin;{MD5};Léa;Martin;Élève;;;;77-1\n").encode()
    import_legacy_accounts(data, structure=college, dry_run=True)
    assert argon2_computations == []


@pytest.fixture
def imported_before(college):
    """Accounts as an import before this change left them: the bare legacy digests."""
    md5_user = account("lea.martin", "Léa", "Martin", structures=[college])
    sha_user = account("paul.durand", "Paul", "Durand", structures=[college])
    User.objects.filter(pk=md5_user.pk).update(password=f"legacy_md5$${MD5}")
    User.objects.filter(pk=sha_user.pk).update(password=f"legacy_sha256$${SHA256}")
    normal = account("jean.dupont", "Jean", "Dupont", password=STRONG_PASSWORD)
    return md5_user, sha_user, normal


def test_the_migration_wraps_existing_hashes(imported_before):
    _md5_user, _sha_user, normal = imported_before
    before = User.objects.get(pk=normal.pk).password
    assert MD5 in dump_text()
    wrap_migration.wrap_existing(apps, None)
    dump = dump_text()
    assert MD5 not in dump and SHA256 not in dump and "legacy_" + "md5$$" not in dump
    assert User.objects.get(pk=normal.pk).password == before  # Argon2id accounts untouched


def test_old_password_opens_once_then_the_hash_is_plain_argon2id(client, imported_before):
    wrap_migration.wrap_existing(apps, None)
    for identifier in ("lea.martin", "paul.durand"):
        response = login(client, identifier, PASSWORD)
        assert response.status_code == 302 and response["Location"] == "/"
        stored = User.objects.get(identifier=identifier).password
        assert stored.startswith("argon2$argon2id$")
        client.post("/auth/logout")
        assert login(client, identifier, PASSWORD).status_code == 302
        client.post("/auth/logout")


def test_a_wrong_password_costs_one_argon2_like_any_account(
    client, imported_before, argon2_computations
):
    wrap_migration.wrap_existing(apps, None)
    argon2_computations.clear()
    assert login(client, "lea.martin", "autre chose").status_code == 200
    assert len(argon2_computations) == 1
    argon2_computations.clear()
    assert login(client, "jean.dupont", "autre chose").status_code == 200
    assert len(argon2_computations) == 1
    # The wrapped hash stays (no upgrade on a failure).
    assert User.objects.get(identifier="lea.martin").password.startswith("argon2_legacy_md5$")
