"""One folding for the lookup and the limits, an indexed lookup, no scan (issue 7 §1, §3)."""

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portail.accounts.identifiers import fold_email, fold_identifier
from portail.accounts.models import User
from portail.mail.models import OutgoingMail
from portail.recovery import services
from tests.helpers import account, text

LOST_IDENTIFIER = "/auth/lost-identifier"
LOST_PASSWORD = "/auth/lost-password"
ADDRESS = "ines.simon@example.org"
# The same address and identifier as Unicode spells them otherwise: long s (U+017F), capitals,
# compatibility characters (roman numeral, fullwidth letters), all that the email field accepts. The database's UPPER() matched these, and
# Python's lower() gave each a budget of its own.
ADDRESS_SPELLINGS = [
    "ineſ.ſimon@example.org",
    "INES.SIMON@EXAMPLE.ORG",
    "ines.simon@examp\u217ce.org",  # small roman numeral fifty, NFKC "l"
    "Ineſ.Simon@Example.org",
]
IDENTIFIER_SPELLINGS = ["ineſ.ſimon", "INEſ.SIMON", "ines.ſimon", "ｉｎｅｓ.simon"]


@pytest.fixture
def ines(school):
    return account("ines.simon", "Inès", "Simon", ADDRESS, [school])


def ask_identifier(client, email):
    return client.post(LOST_IDENTIFIER, {"email": email}, follow=True)


def test_spellings_fold_to_the_address_and_the_identifier():
    for spelling in ADDRESS_SPELLINGS:
        assert fold_email(spelling) == ADDRESS, spelling
    for spelling in IDENTIFIER_SPELLINGS:
        assert fold_identifier(spelling) == "ines.simon", spelling
    assert fold_email("\u212a@x.org") == "k@x.org"
    # Dotless i stays itself: it matches no account (the database's UPPER() would have said I).
    assert fold_email("ınes.simon@example.org") != ADDRESS


@pytest.mark.django_db
def test_address_spellings_share_one_budget_and_one_lookup(client, ines):
    assert services.IDENTIFIER_SENT_MESSAGE in text(ask_identifier(client, ADDRESS))
    for spelling in ADDRESS_SPELLINGS:
        page = text(ask_identifier(Client(REMOTE_ADDR="10.9.8.7"), spelling))
        # Found (not "Adresse courriel inconnue"), and inside the same cadence: no second mail.
        assert services.MailJustSent().message in page, spelling
    assert OutgoingMail.objects.count() == 1


@pytest.mark.django_db
def test_identifier_spellings_share_one_budget(client, ines):
    assert services.RESET_SENT_MESSAGE in text(
        client.post(LOST_PASSWORD, {"identifier": "ines.simon"}, follow=True)
    )
    for spelling in IDENTIFIER_SPELLINGS:
        page = text(client.post(LOST_PASSWORD, {"identifier": spelling}, follow=True))
        assert services.MailJustSent().message in page, spelling
    assert OutgoingMail.objects.count() == 1


@pytest.mark.django_db
def test_dotless_i_spelling_finds_no_account_and_sends_nothing(client, ines):
    page = text(ask_identifier(client, "ınes.simon@example.org"))
    assert "Adresse courriel inconnue" in page
    assert OutgoingMail.objects.count() == 0


@pytest.mark.django_db
def test_lookup_is_one_exact_match_on_the_folded_column_never_a_scan(client, ines, settings):
    for neutral in (False, True):
        settings.PORTAIL_NEUTRAL_RECOVERY_MESSAGES = neutral
        for email in ["personne@example.org", "Ineſ.Simon@Example.org"]:
            with CaptureQueriesContext(connection) as queries:
                ask_identifier(Client(), email)
            users = [q["sql"] for q in queries if '"accounts_user"' in q["sql"].split("WHERE")[0]]
            lookups = [sql for sql in users if "email_folded" in sql]
            assert len(lookups) == 1, users
            where = lookups[0].split("WHERE", 1)[1]
            assert '"accounts_user"."email_folded" = ' in where, where
            for sql in users:
                assert "UPPER(" not in sql and "LIKE" not in sql and "LOWER(" not in sql, sql


@pytest.mark.django_db
def test_the_lookup_uses_the_index_on_postgresql(ines):
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN of PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: ask for the plan shape
        cursor.execute(
            "EXPLAIN SELECT id FROM accounts_user WHERE email_folded = %s", [fold_email(ADDRESS)]
        )
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "user_email_folded" in plan, plan


@pytest.mark.django_db
def test_email_folded_follows_the_address_on_every_save(ines):
    assert User.objects.get(pk=ines.pk).email_folded == ADDRESS
    ines.email = "  Ineſ.NOUVEAU@example.org"
    ines.save(update_fields=["email"])
    assert User.objects.get(pk=ines.pk).email_folded == "ines.nouveau@example.org"


@pytest.mark.django_db
def test_migration_fills_the_folded_address_of_existing_accounts(ines):
    User.objects.filter(pk=ines.pk).update(email="Ineſ.Simon@Example.org", email_folded="")
    migration = importlib.import_module("portail.accounts.migrations.0006_email_folded")
    migration.fill_email_folded(apps, None)
    assert User.objects.get(pk=ines.pk).email_folded == ADDRESS
    # And what the migration does is what the model does.
    assert migration._fold("Ineſ.Simon@Example.org") == fold_email("Ineſ.Simon@Example.org")


@pytest.mark.django_db
def test_imported_accounts_get_their_folded_address(school, tmp_path):
    from portail.directory.imports.engine import insert_rows

    [pk] = insert_rows(
        User,
        [
            {
                "identifier": "paul.import",
                "first_name": "Paul",
                "last_name": "Import",
                "profile": "eleve",
                "email": "Paul.Import@Example.org",
                "email_folded": fold_email("Paul.Import@Example.org"),
            }
        ],
        returning_ids=True,
    )
    assert User.objects.get(pk=pk).email_folded == "paul.import@example.org"
