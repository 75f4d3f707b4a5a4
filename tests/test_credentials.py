"""First-connection credentials by email (issue 12): the mail, its link, the 24-hour rule,
refusals, the console's preview and report, the command and the import option.

Real parts: aiosmtpd receives the mails (tests/smtp.py; a worker pass runs before each read),
the test client follows the link from the received mail.
"""

import io
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portail.accounts.models import Profile, State, Token, User
from portail.accounts.provisioning import create_account
from portail.activation.credentials import plan, send_credentials
from portail.activation.models import CredentialsMail
from portail.audit.models import Event
from portail.directory.imports.region_csv import import_region_csv
from portail.directory.models import Function, SchoolClass, Structure
from portail.mail.models import OutgoingMail
from portail.mail.services import deliver_due
from portail.security import tokens
from tests import helpers
from tests.conftest import enter_admin
from tests.console.conftest import enrol, staff
from tests.e2e.helpers import NEW_PASSWORD
from tests.smtp import SMTPServer, point_django_at

pytestmark = pytest.mark.django_db(transaction=True)

LINK_PREFIX = "https://ent.example.test/auth/activation/lien/"


def text(response):
    # The one reading of a page for comparisons (NBSP and ’ read as the seed's space and ').
    return helpers.text(response)


def pending(first, last, email, school, school_class=None, profile=Profile.PARENT):
    user, code = create_account(
        first,
        last,
        profile,
        structures=[school],
        classes=[school_class] if school_class else [],
    )
    user.contact_email = email
    user.save(update_fields=["contact_email"])
    return user, code


@pytest.fixture
def parent(school, school_class):
    return pending("Marc", "Dupont", "marc.dupont@example.org", school, school_class)


@pytest.fixture
def referent(school):
    user = staff("anne.martin", school)
    Function.objects.create(user=user, role=Function.Role.REFERENT, structure=school)
    return user


@pytest.fixture
def console(client, referent):
    enrol(referent)
    enter_admin(client, referent)
    return client


def the_link(smtp, to):
    mail = smtp.only(to=to)
    links = mail.links(prefix=LINK_PREFIX)
    assert len(links) == 1
    return mail, urlsplit(links[0]).path


def activate(client, path, email="marc.perso@example.org"):
    opened = client.get(path)
    assert opened.status_code == 302 and opened["Location"] == "/auth/activation"
    return client.post(
        "/auth/activation",
        {
            "new_password": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
            "email": email,
            "phone": "",
            "charter": "on",
        },
    )


def test_mail_holds_identifier_and_a_link_that_opens_the_first_connection(client, smtp, parent):
    user, _code = parent
    report = send_credentials(None, User.objects.filter(pk=user.pk))
    assert report.sent == [user.pk]
    mail, path = the_link(smtp, "marc.dupont@example.org")
    assert "identifiants" in mail.subject
    assert f"Votre identifiant : {user.identifier}" in mail.text
    assert "Activer mon compte" in mail.html and user.identifier in mail.html
    secret = path.rsplit("/", 1)[1]
    assert len(secret) >= 22  # ≥ 128 bits, URL-safe base64
    token = Token.objects.get(user=user, purpose=Token.Purpose.ACTIVATION_LINK)
    assert secret not in token.digest
    assert token.digest == tokens.digest(Token.Purpose.ACTIVATION_LINK, secret)
    assert (token.expires_at - token.created_at) == timedelta(days=14)

    # The token leaves the URL at once, with no Referer to leak it.
    opened = client.get(path)
    assert opened.status_code == 302 and opened["Location"] == "/auth/activation"
    assert opened["Referrer-Policy"] == "no-referrer"
    page = client.get("/auth/activation")
    body = text(page)
    assert "Première connexion" in body
    # The contact address is pre-filled in the email field; the user may change it.
    assert re.search(r'name="email"[^>]*value="marc.dupont@example.org"', body)
    done = client.post(
        "/auth/activation",
        {
            "new_password": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
            "email": "marc.perso@example.org",
            "phone": "",
            "charter": "on",
        },
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.state == State.ACTIVE and user.email == "marc.perso@example.org"
    assert user.check_password(NEW_PASSWORD)


def test_link_dies_after_use(client, smtp, parent):
    user, code = parent
    send_credentials(None, User.objects.filter(pk=user.pk))
    _mail, path = the_link(smtp, "marc.dupont@example.org")
    assert activate(client, path).status_code == 302
    client.logout()
    again = client.get(path)
    assert again.status_code == 200
    assert "Votre compte est déjà activé" in text(again)
    assert not Token.objects.filter(user=user, purpose=Token.Purpose.ACTIVATION).exists()
    # The printed code died with it.
    login = client.post("/auth/login", {"identifier": user.identifier, "password": code})
    assert "incorrect" in text(login)


def test_the_mailed_link_proves_the_address_only_if_it_is_kept(client, smtp, parent):
    """OIDC email_verified: the link reached the contact address; typing another proves nothing."""
    from portail.sso.oidc import email_verified

    user, _code = parent
    send_credentials(None, User.objects.filter(pk=user.pk))
    _mail, path = the_link(smtp, "marc.dupont@example.org")
    assert activate(client, path, email="Marc.Dupont@example.org").status_code == 302
    user.refresh_from_db()
    event = Event.objects.get(target_id=user.pk, tag="account.activated")
    assert event.data["email_proven"] is True
    assert email_verified(user) is True


def test_another_address_typed_after_the_link_is_not_proven(client, smtp, parent):
    from portail.sso.oidc import email_verified

    user, _code = parent
    send_credentials(None, User.objects.filter(pk=user.pk))
    _mail, path = the_link(smtp, "marc.dupont@example.org")
    assert activate(client, path).status_code == 302  # marc.perso@…, typed
    user.refresh_from_db()
    assert (
        Event.objects.get(target_id=user.pk, tag="account.activated").data["email_proven"] is False
    )
    assert email_verified(user) is False


def test_printed_code_keeps_working_alongside_and_kills_the_link(client, smtp, parent):
    user, code = parent
    send_credentials(None, User.objects.filter(pk=user.pk))
    _mail, path = the_link(smtp, "marc.dupont@example.org")
    login = client.post("/auth/login", {"identifier": user.identifier, "password": code})
    assert login.status_code == 302 and login["Location"] == "/auth/activation"
    page = text(client.get("/auth/activation"))
    assert 'value="marc.dupont@example.org"' not in page  # only the link pre-fills it
    client.post(
        "/auth/activation",
        {
            "new_password": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
            "email": "marc@example.org",
            "phone": "",
            "charter": "on",
        },
    )
    user.refresh_from_db()
    assert user.state == State.ACTIVE
    client.logout()
    assert "plus valable" in text(client.get(path))
    assert not Token.objects.filter(user=user, purpose=Token.Purpose.ACTIVATION_LINK).exists()


def test_link_dies_when_the_referent_gives_a_new_code(client, console, smtp, parent):
    user, _code = parent
    send_credentials(None, User.objects.filter(pk=user.pk))
    _mail, path = the_link(smtp, "marc.dupont@example.org")
    assert console.post(f"/console/comptes/{user.pk}/nouveau-code").status_code == 200
    console.logout()
    dead = client.get(path)
    assert dead.status_code == 200 and "plus valable" in text(dead)
    assert dead["Referrer-Policy"] == "no-referrer"


def test_a_newer_link_kills_the_older(client, smtp, parent):
    user, _code = parent
    send_credentials(None, User.objects.filter(pk=user.pk))
    _mail, first = the_link(smtp, "marc.dupont@example.org")
    smtp.clear()
    send_credentials(None, User.objects.filter(pk=user.pk), resend=True)
    _mail, second = the_link(smtp, "marc.dupont@example.org")
    assert first != second
    assert "plus valable" in text(client.get(first))
    assert client.get(second)["Location"] == "/auth/activation"


def test_unknown_or_mangled_link_is_a_french_message_not_an_error(client, db):
    for path in ("/auth/activation/lien/abc", "/auth/activation/lien/" + "x" * 300):
        response = client.get(path)
        assert response.status_code == 200 and "plus valable" in text(response)


def test_expired_link_is_refused(client, smtp, parent):
    user, _code = parent
    send_credentials(None, User.objects.filter(pk=user.pk))
    _mail, path = the_link(smtp, "marc.dupont@example.org")
    Token.objects.filter(user=user, purpose=Token.Purpose.ACTIVATION_LINK).update(
        expires_at=Token.objects.get(user=user, purpose=Token.Purpose.ACTIVATION_LINK).created_at
    )
    assert "plus valable" in text(client.get(path))


def test_24_hour_rule_needs_an_explicit_resend(smtp, parent):
    user, _code = parent
    accounts = User.objects.filter(pk=user.pk)
    assert send_credentials(None, accounts).sent == [user.pk]
    again = send_credentials(None, accounts)
    assert again.sent == [] and again.recently_mailed == [user.pk]
    assert len(smtp.sent_to("marc.dupont@example.org")) == 1
    CredentialsMail.objects.update(
        created_at=CredentialsMail.objects.get().created_at - timedelta(hours=25)
    )
    assert send_credentials(None, accounts).sent == [user.pk]
    assert send_credentials(None, accounts, resend=True).sent == [user.pk]
    assert len(smtp.sent_to("marc.dupont@example.org")) == 3
    events = Event.objects.filter(tag="account.credentials_mailed", target=user)
    assert events.count() == 3
    assert "marc.dupont@example.org" not in str(list(events.values_list("data", flat=True)))


def test_activated_accounts_and_those_without_address_get_no_mail(smtp, school, school_class):
    pupil, _ = pending("Léa", "Martin", "", school, school_class, Profile.ELEVE)
    active, _ = pending("Paul", "Roux", "paul@example.org", school, school_class)
    active.state = State.ACTIVE
    active.save(update_fields=["state"])
    parent, _ = pending("Marc", "Dupont", "marc@example.org", school, school_class)
    report = send_credentials(None, User.objects.filter(structures=school))
    assert report.sent == [parent.pk] and report.without_address == [pupil.pk]
    assert [m.recipients for m in smtp.messages] == [["marc@example.org"]]


def test_console_preview_confirm_and_report(console, smtp, school, school_class, parent):
    pupil, _ = pending("Léa", "Martin", "", school, school_class, Profile.ELEVE)
    query = f"?school_class={school_class.pk}"
    preview = text(console.get("/console/identifiants" + query))
    assert "1 compte recevra un courriel" in preview
    assert "1 n'a pas d'adresse : imprimez leur fiche" in preview
    assert "Renvoyer aussi aux comptes déjà destinataires il y a moins de 24 h" in preview
    assert OutgoingMail.objects.count() == 0  # the preview sends nothing
    done = console.post("/console/identifiants", {"school_class": school_class.pk})
    assert "1 courriel mis en file d'envoi." in text(done)
    assert len(smtp.messages) == 1
    again = text(console.get("/console/identifiants" + query))
    assert "0 compte recevra un courriel" in again  # French: 0 takes the singular
    assert "déjà reçu ses identifiants il y a moins de 24 h" in again
    resent = console.post(
        "/console/identifiants", {"school_class": school_class.pk, "resend": "on"}
    )
    assert "1 courriel mis en file" in text(resent)
    event = Event.objects.filter(tag="account.credentials_mailed").first()
    assert event.actor == User.objects.get(identifier="anne.martin")


def test_console_sends_for_one_account_from_its_page(console, smtp, parent):
    user, _code = parent
    page = text(console.get(f"/console/comptes/{user.pk}/"))
    assert "Envoyer les identifiants par courriel" in page
    assert f"/console/identifiants?compte={user.pk}" in page
    preview = text(console.get(f"/console/identifiants?compte={user.pk}"))
    assert "1 compte recevra un courriel" in preview and user.identifier in preview
    console.post("/console/identifiants", {"compte": user.pk})
    assert smtp.only(to="marc.dupont@example.org")


def test_console_never_reaches_another_school(console, smtp, db):
    other = Structure.objects.create(uai="0771235B", name="Lycée Berthe Morisot")
    other_class = SchoolClass.objects.create(structure=other, name="1ère 2")
    stranger, _ = pending("Bastien", "Berger", "b@example.org", other, other_class)
    assert console.get(f"/console/identifiants?compte={stranger.pk}").status_code == 404
    assert console.post("/console/identifiants", {"compte": stranger.pk}).status_code == 404
    refused = console.post("/console/identifiants", {"school_class": other_class.pk})
    assert refused.status_code == 200 and "pas valable" in text(refused)
    bad = console.get("/console/identifiants?compte=abc")
    assert bad.status_code == 200 and "pas valable" in text(bad)
    assert OutgoingMail.objects.count() == 0


def test_a_whole_lycee_is_queued_never_sent_inside_the_request(console, smtp, school, school_class):
    accounts = [
        pending(f"Parent{i}", "Dupont", f"p{i}@example.org", school, school_class)[0]
        for i in range(60)
    ]
    done = console.post("/console/identifiants", {"profile": "parent"})
    assert "60 courriels mis en file" in text(done)
    # Nothing reached the relay during the request: every mail is still queued.
    assert OutgoingMail.objects.filter(status=OutgoingMail.Status.PENDING).count() == 60
    assert CredentialsMail.objects.count() == 60
    assert Token.objects.filter(purpose=Token.Purpose.ACTIVATION_LINK).count() == 60
    assert len(smtp.messages) == 60  # the worker pass sends them
    assert {m.recipients[0] for m in smtp.messages} == {a.contact_email for a in accounts}


def test_relay_refusal_is_shown_on_the_account_page(console, settings, parent):
    user, _code = parent
    relay = SMTPServer("refuse")  # 550 to DATA
    relay.start()
    point_django_at(settings, relay)
    try:
        send_credentials(None, User.objects.filter(pk=user.pk))
        deliver_due()
    finally:
        relay.stop()
    assert OutgoingMail.objects.get().status == OutgoingMail.Status.FAILED
    page = text(console.get(f"/console/comptes/{user.pk}/"))
    assert "adresse refusée par le serveur de messagerie" in page
    # A corrected address brought by a re-import: the refusal no longer applies to it.
    user.contact_email = "marc.autre@example.org"
    user.save(update_fields=["contact_email"])
    assert "adresse refusée" not in text(console.get(f"/console/comptes/{user.pk}/"))


def test_a_deferred_mail_is_not_a_refusal(console, settings, parent):
    user, _code = parent
    relay = SMTPServer("defer")  # 451: retried later, not refused
    relay.start()
    point_django_at(settings, relay)
    try:
        send_credentials(None, User.objects.filter(pk=user.pk))
        deliver_due()
    finally:
        relay.stop()
    assert "adresse refusée" not in text(console.get(f"/console/comptes/{user.pk}/"))


# --- Imports: the contact address, and --send-credentials ---------------------------------------

PARENTS = (
    "Nom*;Prénom*;Adresse;Code postal;Ville;Pays;Courriel;Téléphone;"
    "Nom de l'élève;Prénom de l'élève;Classes de l'élève\n"
    "Dupont;Marc;1 rue;77000;Melun;France;marc@example.org;0612345678;Dupont;Jean;2nde 3\n"
    "Dupré;Anne;;;;;anne@example.org;;Dupré;Élodie;2nde 3\n"
    "Roux;Paul;;;;;;;Roux;Léo;2nde 3\n"
)


@pytest.fixture
def children(school, school_class):
    """The pupils the parents' file names (a parent's row must name a child)."""
    for first, last in (("Jean", "Dupont"), ("Élodie", "Dupré"), ("Léo", "Roux")):
        create_account(first, last, Profile.ELEVE, structures=[school], classes=[school_class])


def test_import_keeps_the_contact_address_while_pending_never_after(school, children):
    import_region_csv(PARENTS.encode(), structure=school, profile=Profile.PARENT)
    marc = User.objects.get(identifier="marc.dupont")
    anne = User.objects.get(identifier="anne.dupre")
    assert marc.contact_email == "marc@example.org"
    anne.email = "anne.perso@example.org"
    anne.state = State.ACTIVE
    anne.save()
    changed = PARENTS.replace("marc@example.org", "marc.new@example.org").replace(
        "anne@example.org", "anne.new@example.org"
    )
    import_region_csv(changed.encode(), structure=school, profile=Profile.PARENT)
    marc.refresh_from_db()
    anne.refresh_from_db()
    assert marc.contact_email == "marc.new@example.org"  # pending: follows the file
    assert anne.contact_email == "anne@example.org"  # activated: never changes again
    assert anne.email == "anne.perso@example.org"


def _import_users(tmp_path, name, content, *extra):
    source = tmp_path / name
    source.write_text(content)
    out = io.StringIO()
    call_command(
        "import_users",
        str(source),
        "--structure",
        "0751234A",
        "--profile",
        "parent",
        "--output",
        str(tmp_path / f"letters-{name}"),
        *extra,
        stdout=out,
    )
    return out.getvalue()


def test_import_option_sends_one_mail_per_new_account_with_an_address(
    tmp_path, smtp, school, children
):
    said = _import_users(tmp_path, "a.csv", PARENTS, "--send-credentials")
    assert "2 courriel(s) mis en file" in said and "1 compte(s) sans adresse" in said
    received = sorted(m.recipients[0] for m in smtp.messages)
    assert received == ["anne@example.org", "marc@example.org"]
    # A re-import creates nobody: nobody is mailed again.
    smtp.clear()
    said = _import_users(tmp_path, "b.csv", PARENTS, "--send-credentials")
    assert "0 courriel(s)" in said
    assert smtp.messages == []
    # Without the option, no mail at all.
    more = PARENTS + "Lenoir;Claire;;;;;claire@example.org;;Roux;Léo;2nde 3\n"
    _import_users(tmp_path, "c.csv", more)
    assert smtp.messages == []


def test_send_credentials_command(tmp_path, smtp, school, school_class):
    parent_a, _ = pending("Marc", "Dupont", "marc@example.org", school, school_class)
    other_class = SchoolClass.objects.create(structure=school, name="2nde 4")
    pending("Anne", "Dupré", "anne@example.org", school, other_class)
    pending("Léa", "Martin", "", school, school_class, Profile.ELEVE)
    out = io.StringIO()
    call_command(
        "send_credentials", "--structure", "0751234A", "--class", "2nde 3", "--dry-run", stdout=out
    )
    assert "1 courriel(s) à envoyer, 1 compte(s) sans adresse" in out.getvalue()
    assert OutgoingMail.objects.count() == 0
    out = io.StringIO()
    call_command(
        "send_credentials",
        "--structure",
        "0751234A",
        "--class",
        "2nde 3",
        "--profile",
        "parent",
        stdout=out,
    )
    assert "1 courriel(s) mis en file" in out.getvalue()
    assert [m.recipients for m in smtp.messages] == [["marc@example.org"]]
    out = io.StringIO()
    call_command("send_credentials", "--structure", "0751234A", stdout=out)
    assert "1 courriel(s) mis en file" in out.getvalue()  # Anne; Marc was mailed < 24 h ago
    assert "1 déjà destinataire(s)" in out.getvalue()
    call_command("send_credentials", "--structure", "0751234A", "--resend", stdout=io.StringIO())
    assert len(smtp.sent_to("marc@example.org")) == 2
    with pytest.raises(CommandError, match="Établissement inconnu"):
        call_command("send_credentials", "--structure", "0000000X")
    with pytest.raises(CommandError, match="Classe « 3e Z » inconnue"):
        call_command("send_credentials", "--structure", "0751234A", "--class", "3e Z")
    assert plan(User.objects.filter(pk=parent_a.pk)).recently_mailed == [parent_a.pk]


def test_import_aaf_option_mails_each_new_account_with_an_address_once(tmp_path, smtp, db):
    from tests.directory import aaf_feed as feed
    from tests.directory.test_aaf import build

    build(
        tmp_path,
        teachers=[
            feed.teacher("T1", "Marie", "CURIE", ["100"], ["100$2NDE3"], mail="marie@ac.example"),
            feed.teacher("T2", "Louis", "PASTEUR", ["100"], teaches=False),
        ],
    )
    out = io.StringIO()
    call_command(
        "import_aaf",
        str(tmp_path),
        "--output",
        str(tmp_path / "c.csv"),
        "--send-credentials",
        stdout=out,
    )
    assert "2 courriel(s) mis en file" in out.getvalue()
    assert sorted(m.recipients[0] for m in smtp.messages) == [
        "anne@example.org",
        "marie@ac.example",
    ]
    smtp.clear()
    call_command("import_aaf", str(tmp_path), "--send-credentials", stdout=io.StringIO())
    assert smtp.messages == []  # nobody new: nobody mailed again
    anne = User.objects.get(external_id="P1")
    assert anne.contact_email == "anne@example.org"
