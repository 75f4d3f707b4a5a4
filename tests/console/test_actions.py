"""Each console action: confirmed by a POST, done, and audited with actor, target, before/after."""

import re

import pytest
from django.test import Client

from portail.accounts.models import Profile, State, User
from portail.accounts.services import usable_activation_token
from portail.audit.models import Event
from portail.directory.models import Relationship
from tests.conftest import STRONG_PASSWORD

from .conftest import text

pytestmark = pytest.mark.django_db
BLOCKED = (
    "L'administrateur de votre établissement a bloqué votre accès à l'ENT. Veuillez le contacter."
)


def event(tag, target):
    return Event.objects.get(tag=tag, target=target)


def test_block_ends_sessions_and_login_says_why_then_unblock(console, referent, active_user):
    victim = Client()
    victim.post("/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD})
    assert victim.get("/").status_code == 200

    confirm = console.get(f"/console/comptes/{active_user.pk}/bloquer")
    assert confirm.status_code == 200 and "Bloquer" in text(confirm)
    active_user.refresh_from_db()
    assert active_user.state == State.ACTIVE  # a GET changes nothing

    console.post(f"/console/comptes/{active_user.pk}/bloquer")
    active_user.refresh_from_db()
    assert active_user.state == State.BLOCKED
    assert victim.get("/").status_code == 302  # its open session died
    refused = Client().post(
        "/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD}
    )
    assert BLOCKED in text(refused)
    blocked = event("console.account.blocked", active_user)
    assert blocked.actor == referent
    assert blocked.data["before"] == {"state": "active"}
    assert blocked.data["after"] == {"state": "blocked"}

    console.post(f"/console/comptes/{active_user.pk}/debloquer")
    active_user.refresh_from_db()
    assert active_user.state == State.ACTIVE
    assert event("console.account.unblocked", active_user).actor == referent
    ok = Client().post("/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD})
    assert ok.status_code == 302


def test_unblocking_a_never_activated_account_gives_back_its_code(console, pupil_a):
    pupil, code = pupil_a
    console.post(f"/console/comptes/{pupil.pk}/bloquer")
    console.post(f"/console/comptes/{pupil.pk}/debloquer")
    pupil.refresh_from_db()
    assert pupil.state == State.PENDING
    assert usable_activation_token(pupil, code) is not None


def test_new_code_kills_old_code_and_password_and_prints_a_letter(console, referent, active_user):
    page = console.post(f"/console/comptes/{active_user.pk}/nouveau-code")
    code = page.context["code"]
    assert code in text(page)
    active_user.refresh_from_db()
    assert active_user.state == State.PENDING
    old = Client().post("/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD})
    assert "L'identifiant ou le mot de passe est incorrect." in text(old)
    fresh = Client().post("/auth/login", {"identifier": "jean.dupont", "password": code})
    assert fresh.status_code == 302 and fresh["Location"] == "/auth/activation"
    assert code not in str(event("console.account.new_code", active_user).data)

    import io

    import pypdf

    letter = console.post(f"/console/comptes/{active_user.pk}/fiche", {"code": code})
    assert letter["Content-Type"] == "application/pdf"
    content = pypdf.PdfReader(io.BytesIO(letter.content)).pages[0].extract_text()
    assert code in content and "jean.dupont" in content
    # Another code than the live one is not printed.
    forged = console.post(f"/console/comptes/{active_user.pk}/fiche", {"code": "abcdefgh"})
    assert forged.status_code == 302


def test_change_identifier_rules_and_audit(console, referent, active_user, pupil_a):
    pupil, _ = pupil_a
    url = f"/console/comptes/{active_user.pk}/identifiant"
    for bad, message in [
        ("Jean Dupont", "minuscules sans accent"),
        ("x" * 65, "64 caractères"),
        (pupil.identifier, "déjà utilisé"),
    ]:
        page = text(console.post(url, {"identifier": bad}, follow=True))
        assert message in page, bad
        active_user.refresh_from_db()
        assert active_user.identifier == "jean.dupont"
    console.post(url, {"identifier": "papa.dupont2"})
    active_user.refresh_from_db()
    assert active_user.identifier == "papa.dupont2"
    changed = event("console.account.identifier_changed", active_user)
    assert changed.data == {
        "before": {"identifier": "jean.dupont"},
        "after": {"identifier": "papa.dupont2"},
    }
    assert changed.actor == referent
    ok = Client().post("/auth/login", {"identifier": "papa.dupont2", "password": STRONG_PASSWORD})
    assert ok.status_code == 302


def test_fix_names(console, active_user):
    console.post(
        f"/console/comptes/{active_user.pk}/noms", {"first_name": "Jean-Luc", "last_name": "Dupont"}
    )
    active_user.refresh_from_db()
    assert active_user.first_name == "Jean-Luc"
    renamed = event("console.account.renamed", active_user)
    assert (
        renamed.data["before"]["first_name"] == "Jean"
        and renamed.data["after"]["first_name"] == "Jean-Luc"
    )


def test_link_and_unlink_parent_and_child(console, pupil_a, parent_a, active_user):
    pupil, _ = pupil_a
    console.post(f"/console/comptes/{pupil.pk}/liens", {"other": parent_a.identifier})
    assert Relationship.objects.filter(parent=parent_a, child=pupil).exists()
    assert event("console.account.linked", pupil).data["after"] == {
        "parent": parent_a.identifier,
        "child": pupil.identifier,
    }
    # Two pupils, or an unknown account, cannot be linked.
    other_pupil = User.objects.create_user(
        "zoe.zed", None, first_name="Zoé", last_name="Zed", profile=Profile.ELEVE
    )
    other_pupil.structures.set(pupil.structures.all())
    refused = console.post(f"/console/comptes/{pupil.pk}/liens", {"other": "zoe.zed"}, follow=True)
    assert "Un lien relie un compte parent à un compte élève." in text(refused)

    page = text(console.get(f"/console/comptes/{parent_a.pk}/"))
    assert "Élodie Dupré" in page
    assert (
        console.get(f"/console/comptes/{parent_a.pk}/liens/{pupil.pk}/retirer").status_code == 200
    )
    assert Relationship.objects.filter(parent=parent_a, child=pupil).exists()
    console.post(f"/console/comptes/{parent_a.pk}/liens/{pupil.pk}/retirer")
    assert not Relationship.objects.filter(parent=parent_a, child=pupil).exists()
    assert event("console.account.unlinked", parent_a).actor is not None


def test_account_page_shows_facts_masked_email_and_trail(console, active_user):
    Client().post("/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD})
    console.post(f"/console/comptes/{active_user.pk}/bloquer")
    page = text(console.get(f"/console/comptes/{active_user.pk}/"))
    for expected in [
        "Bloqué",
        "jean.dupont",
        "Parent",
        "Lycée Claude Monet",
        "j•••@e•••.org",
        "Compte bloqué par Anne Martin (anne.martin).",
        "Connexion.",
        "État : Actif → Bloqué",
    ]:
        assert expected in page, expected
    trail = page[page.index("Journal du compte") :]
    assert "console.account" not in trail and "active" not in trail and "blocked" not in trail
    assert "jean.dupont@example.org" not in page
    assert "Jamais" not in page  # the last login is known


@pytest.mark.parametrize(
    "address,masked",
    [("jean.dupont@example.org", "j•••@e•••.org"), ("a@b", "a•••@b•••"), ("", "")],
)
def test_mask_email(address, masked):
    from portail.console.views import mask_email

    assert mask_email(address) == masked


def test_search_by_name_identifier_and_filters(console, pupil_a, active_user, school, school_class):
    pupil, _ = pupil_a
    active_user.leaving_since = active_user.created_at
    active_user.save()

    def found(query):
        return text(console.get("/console/?" + query))

    assert "elodie.dupre" in found("q=dupré") and "jean.dupont" not in found("q=dupré")
    assert "elodie.dupre" in found("q=elodie+dupr")
    assert "jean.dupont" in found("q=jean.dup")
    assert "elodie.dupre" in found("profile=eleve") and "jean.dupont" not in found("profile=eleve")
    assert "elodie.dupre" in found(f"school_class={school_class.pk}")
    assert "jean.dupont" not in found(f"school_class={school_class.pk}")
    assert "elodie.dupre" in found("state=pending") and "jean.dupont" not in found("state=pending")
    assert "jean.dupont" in found("state=active")
    assert "jean.dupont" in found("state=leaving") and "elodie.dupre" not in found("state=leaving")
    assert "0 compte" in found("state=blocked")


def test_audit_log_filters_by_account_action_and_date(console, active_user, pupil_a):
    pupil, _ = pupil_a
    console.post(f"/console/comptes/{active_user.pk}/bloquer")
    console.post(
        f"/console/comptes/{pupil.pk}/noms", {"first_name": "Élodie", "last_name": "Dupré-Marin"}
    )

    def rows(query):
        page = text(console.get("/console/journal?" + query))
        return page[page.index("<table") :]  # the events, not the filter's list of actions

    assert "Compte bloqué" in rows("") and "Nom corrigé" in rows("")
    only = rows("account=jean.dupont")
    assert "Compte bloqué" in only and "Nom corrigé" not in only
    tagged = rows("tag=console.account.renamed")
    assert "Nom corrigé" in tagged and "Compte bloqué" not in tagged
    assert "0 événement" in rows("since=2000-01-01&until=2000-01-02")
    from django.utils import timezone

    today = timezone.localdate().isoformat()
    assert "Compte bloqué" in rows(f"since={today}&until={today}")


def test_possible_duplicates_listed_and_ignored(console, referent, school, b_side):
    import datetime

    from portail.accounts.provisioning import create_account

    born = datetime.date(2010, 5, 4)
    twins = [
        create_account("Léa", "Petit", Profile.ELEVE, structures=[school])[0] for _ in range(2)
    ]
    for twin in twins:
        twin.birth_date = born
        twin.save()
    same_mail = [
        create_account("Marc", "Roux", Profile.PARENT, structures=[school], email="m@x.org")[0]
        for _ in range(2)
    ]
    different = create_account("Léa", "Petit", Profile.ELEVE, structures=[school])[
        0
    ]  # no birth date
    page = text(console.get("/console/doublons"))
    assert "2 paires" in page
    assert twins[1].identifier in page and same_mail[1].identifier in page
    assert different.identifier not in page
    assert "Berger" not in page
    console.post(f"/console/doublons/{twins[1].pk}/{twins[0].pk}/ecarter")
    page = text(console.get("/console/doublons"))
    assert "1 paire" in page and twins[1].identifier not in page
    assert event("console.duplicate.ignored", twins[0]).actor == referent
    # A pair with an account of school B cannot be ignored.
    assert (
        console.post(f"/console/doublons/{twins[0].pk}/{b_side['pupil'].pk}/ecarter").status_code
        == 404
    )


def test_send_reset_link_mails_the_account_and_audits(console, referent, active_user):
    from portail.mail.models import OutgoingMail

    console.post(f"/console/comptes/{active_user.pk}/reinitialisation")
    assert event("console.account.reset_link_sent", active_user).actor == referent
    mail = OutgoingMail.objects.get(to="jean.dupont@example.org")
    assert "/auth/reset/" in mail.text


def test_a_blocked_account_gets_no_new_code_until_unblocked(console, active_user):
    console.post(f"/console/comptes/{active_user.pk}/bloquer")
    page = console.post(f"/console/comptes/{active_user.pk}/nouveau-code", follow=True)
    assert "débloquez-le d'abord" in text(page)
    active_user.refresh_from_db()
    assert active_user.state == State.BLOCKED
    assert not Event.objects.filter(tag="console.account.new_code").exists()


def test_navigation_marks_the_current_section(console, active_user):
    for url, section in [
        ("/console/", "Rechercher un compte"),
        (f"/console/comptes/{active_user.pk}/", "Rechercher un compte"),
        ("/console/fiches", "Fiches de connexion"),
        ("/console/journal", "Journal"),
        ("/console/import", "Importer un fichier"),
    ]:
        page = text(console.get(url))
        current = re.findall(r'<a href="[^"]+" aria-current="page">([^<]+)</a>', page)
        assert current == [section], (url, current)


def test_a_refused_identifier_stays_in_its_field_with_its_error(console, active_user, pupil_a):
    pupil, _ = pupil_a
    url = f"/console/comptes/{active_user.pk}/identifiant"
    for typed, error in [
        ("Jean Dupont!", "identifiant"),
        (pupil.identifier, "déjà"),
    ]:
        response = console.post(url, {"identifier": typed})
        assert response.status_code == 400
        page = text(response)
        field = re.search(r'<input[^>]*name="identifier"[^>]*>', page).group(0)
        assert f'value="{typed}"' in field and 'aria-invalid="true"' in field
        errors = re.search(r'id="id_identifier_error">(.*?)</ul>', page, re.S).group(1)
        assert error in errors.lower()
    active_user.refresh_from_db()
    assert active_user.identifier == "jean.dupont"
