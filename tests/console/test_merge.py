"""Merging two accounts of one person from the possible-duplicates page."""

import datetime
import re

import pytest
from django.test import Client
from django.urls import reverse

from portail.accounts.models import Profile, State, User
from portail.accounts.provisioning import create_account
from portail.accounts.services import usable_activation_token
from portail.audit.models import Event
from portail.directory.models import Group, Relationship, SchoolClass
from tests.conftest import STRONG_PASSWORD

from .conftest import text

pytestmark = pytest.mark.django_db
BIRTH = datetime.date(2010, 3, 14)


def merge_url(a, b):
    return reverse("console:merge_duplicate", kwargs={"pk": a.pk, "other_pk": b.pk})


def active_account(identifier, school, **fields):
    user = User.objects.create_user(
        identifier,
        STRONG_PASSWORD,
        first_name="Élodie",
        last_name="Dupré",
        profile=Profile.ELEVE,
        state=State.ACTIVE,
        birth_date=BIRTH,
        **fields,
    )
    user.structures.add(school)
    return user


@pytest.fixture
def pair(school, school_class):
    """Last year's activated account, and this year's pending one from an import."""
    old = active_account("elodie.dupre", school, email="elodie@example.org")
    old.classes.add(school_class)
    new_class = SchoolClass.objects.create(structure=school, name="1ère G2")
    group = Group.objects.create(structure=school, name="Latin")
    new, code = create_account(
        "Élodie", "Dupré", Profile.ELEVE, structures=[school], classes=[new_class]
    )
    new.birth_date, new.external_source, new.external_id = BIRTH, "aaf", "J1234"
    new.phone = "+33612345678"
    new.save()
    new.teaching_groups.add(group)
    mother, _ = create_account("Marie", "Dupré", Profile.PARENT, structures=[school])
    father, _ = create_account("Marc", "Dupré", Profile.PARENT, structures=[school])
    Relationship.objects.create(parent=mother, child=old)
    Relationship.objects.create(parent=father, child=new)
    return {"old": old, "new": new, "code": code, "class": new_class, "group": group,
            "mother": mother, "father": father}  # fmt: skip


def test_duplicates_page_offers_to_merge_and_proposes_the_activated_account(console, pair):
    old, new = pair["old"], pair["new"]
    page = text(console.get("/console/doublons"))
    assert f"Fusionner {old.identifier} et {new.identifier}" in page
    confirm = console.get(merge_url(old, new))
    assert confirm.status_code == 200
    # The activated account is the one checked, whichever order the pair comes in.
    checked = re.findall(r'<input[^>]*value="(\d+)"[^>]*checked', confirm.content.decode())
    assert checked == [str(old.pk)]
    checked = re.findall(
        r'<input[^>]*value="(\d+)"[^>]*checked', text(console.get(merge_url(new, old)))
    )
    assert checked == [str(old.pk)]
    new.refresh_from_db()
    assert new.deactivated_at is None  # a GET changes nothing


def test_merge_moves_classes_groups_links_and_deactivates_the_other(console, referent, pair):
    old, new = pair["old"], pair["new"]
    response = console.post(merge_url(new, old), {"keep": old.pk}, follow=True)
    assert "Les comptes sont fusionnés" in text(response)

    old.refresh_from_db()
    new.refresh_from_db()
    assert set(old.classes.values_list("name", flat=True)) == {"2nde 3", "1ère G2"}
    assert list(old.teaching_groups.all()) == [pair["group"]]
    assert set(User.objects.filter(child_links__child=old)) == {pair["mother"], pair["father"]}
    assert old.external_id == "J1234" and new.external_id is None  # the next import finds `old`
    assert old.phone == "+33612345678"  # a blank filled
    assert old.email == "elodie@example.org" and old.state == State.ACTIVE

    assert new.state == State.BLOCKED and new.deactivated_at is not None and not new.is_active
    assert not new.classes.exists() and not new.teaching_groups.exists()
    assert not Relationship.objects.filter(child=new).exists()
    assert usable_activation_token(new, pair["code"]) is None  # its code died

    merged = Event.objects.get(tag="console.account.merged", target=old)
    assert merged.actor == referent
    assert merged.data["kept"] == old.pk and merged.data["folded"] == new.pk
    assert merged.data["before"]["classes"] == ["2nde 3"]
    assert merged.data["after"]["classes"] == ["1ère G2", "2nde 3"]
    into = Event.objects.get(tag="console.account.merged_into", target=new)
    assert into.data["kept"] == old.pk and into.data["folded"] == new.pk
    assert into.data["before"]["state"] == State.PENDING
    assert into.data["after"]["state"] == State.BLOCKED

    # No longer a possible duplicate; the folded account stays visible, deactivated, unblockable.
    assert "Aucun doublon possible" in text(console.get("/console/doublons"))
    assert "désactivé le" in text(console.get(f"/console/comptes/{new.pk}/"))
    page = text(console.post(f"/console/comptes/{new.pk}/debloquer", follow=True))
    assert "ne peut plus être débloqué" in page
    new.refresh_from_db()
    assert new.state == State.BLOCKED


def test_merging_away_an_active_account_ends_its_sessions(console, school):
    kept = active_account("elodie.dupre", school)
    folded = active_account("elodie.dupre1", school)
    victim = Client()
    victim.post("/auth/login", {"identifier": "elodie.dupre1", "password": STRONG_PASSWORD})
    assert victim.get("/").status_code == 200
    console.post(merge_url(kept, folded), {"keep": kept.pk})
    assert victim.get("/").status_code == 302
    again = Client().post(
        "/auth/login", {"identifier": "elodie.dupre1", "password": STRONG_PASSWORD}
    )
    assert again.status_code == 200  # refused: the login form again
    ok = Client().post("/auth/login", {"identifier": "elodie.dupre", "password": STRONG_PASSWORD})
    assert ok.status_code == 302


def test_accounts_of_different_profiles_are_not_merged(console, school):
    pupil = active_account("elodie.dupre", school)
    teacher = active_account("elodie.dupre1", school)
    teacher.profile = Profile.ENSEIGNANT
    teacher.save()
    page = text(console.post(merge_url(pupil, teacher), {"keep": pupil.pk}, follow=True))
    assert "n'ont pas le même profil" in page
    teacher.refresh_from_db()
    assert teacher.state == State.ACTIVE and teacher.deactivated_at is None
    assert not Event.objects.filter(tag__startswith="console.account.merged").exists()


def test_a_pair_with_an_account_of_another_school_is_not_found(console, school, b_side):
    mine = active_account("bastien.berger1", school)
    mine.first_name, mine.last_name = "Bastien", "Berger"
    mine.save()
    theirs = b_side["pupil"]
    for keep in (mine, theirs):
        assert console.post(merge_url(mine, theirs), {"keep": keep.pk}).status_code == 404
        assert console.get(merge_url(theirs, mine)).status_code == 404
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert theirs.deactivated_at is None and mine.deactivated_at is None
    assert usable_activation_token(theirs, b_side["code"]) is not None


def test_keep_must_be_one_of_the_pair(console, pair, active_user):
    old, new = pair["old"], pair["new"]
    response = console.post(merge_url(old, new), {"keep": active_user.pk})
    assert response.status_code == 200 and "Sélectionnez un choix valide" in text(response)
    new.refresh_from_db()
    assert new.deactivated_at is None


def test_a_pair_is_merged_once(console, pair):
    old, new = pair["old"], pair["new"]
    console.post(merge_url(old, new), {"keep": old.pk})
    again = text(console.post(merge_url(old, new), {"keep": new.pk}, follow=True))
    assert "déjà désactivé" in again
    old.refresh_from_db()
    assert old.deactivated_at is None and old.state == State.ACTIVE
    assert Event.objects.filter(tag="console.account.merged").count() == 1


def test_a_referent_cannot_merge_an_account_that_also_belongs_to_another_school(
    console, pair, school_b
):
    pair["new"].structures.add(school_b)
    page = text(
        console.post(merge_url(pair["old"], pair["new"]), {"keep": pair["old"].pk}, follow=True)
    )
    assert "seul l'administrateur régional peut le fusionner" in page
    assert not pair["old"].structures.filter(pk=school_b.pk).exists()
    assert User.objects.get(pk=pair["new"].pk).deactivated_at is None


def test_merge_events_keep_no_contact_data(console, pair):
    console.post(merge_url(pair["old"], pair["new"]), {"keep": pair["old"].pk})
    for event in Event.objects.filter(tag="console.account.merged"):
        dump = str(event.data)
        assert "elodie@example.org" not in dump and "+33612345678" not in dump
        assert "J1234" not in dump and "elodie.dupre" not in dump


def test_letters_are_not_issued_for_deactivated_accounts(referent, pair):
    from django.utils import timezone

    from portail.console.views import _letters_selection

    pair["new"].deactivated_at = timezone.now()
    pair["new"].save()
    selected = set(_letters_selection(referent, {}).values_list("pk", flat=True))
    assert pair["old"].pk in selected and pair["new"].pk not in selected
