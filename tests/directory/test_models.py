import pytest
from django.db import IntegrityError, transaction

from portail.accounts.models import Profile, State, User
from portail.directory.models import (
    Function,
    Relationship,
    Structure,
    StructureKind,
    accounts_administered_by,
    administers,
    is_regional_admin,
    structures_administered_by,
)
from tests.conftest import enter_admin


def _user(identifier, **fields):
    fields.setdefault("first_name", "Anne")
    fields.setdefault("last_name", "Martin")
    fields.setdefault("profile", Profile.PERSONNEL)
    fields.setdefault("state", State.ACTIVE)
    return User.objects.create_user(identifier, None, **fields)


@pytest.fixture
def two_schools(db):
    a = Structure.objects.create(uai="0771234A", name="Collège A", kind=StructureKind.COLLEGE)
    b = Structure.objects.create(uai="0771235B", name="Lycée B", kind=StructureKind.LYCEE)
    return a, b


def test_referent_administers_only_his_structures(two_schools):
    a, b = two_schools
    referent = _user("anne.martin")
    Function.objects.create(user=referent, role=Function.Role.REFERENT, structure=a)
    assert list(structures_administered_by(referent)) == [a]
    assert administers(referent, a)
    assert not administers(referent, b)
    assert not is_regional_admin(referent)


def test_regional_admin_administers_every_structure(two_schools):
    admin = _user("paul.region")
    Function.objects.create(user=admin, role=Function.Role.REGIONAL_ADMIN)
    assert set(structures_administered_by(admin)) == set(two_schools)
    assert is_regional_admin(admin)


def test_plain_user_and_blocked_referent_administer_nothing(two_schools):
    a, _ = two_schools
    nobody = _user("jean.rien")
    assert not structures_administered_by(nobody).exists()
    blocked = _user("bob.bloque", state=State.BLOCKED)
    Function.objects.create(user=blocked, role=Function.Role.REFERENT, structure=a)
    assert not structures_administered_by(blocked).exists()


def test_function_structure_must_match_role(two_schools):
    a, _ = two_schools
    user = _user("anne.martin")
    with pytest.raises(IntegrityError), transaction.atomic():
        Function.objects.create(user=user, role=Function.Role.REFERENT, structure=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        Function.objects.create(user=user, role=Function.Role.REGIONAL_ADMIN, structure=a)


def test_parent_has_children_in_several_schools(two_schools):
    a, b = two_schools
    parent = _user("marc.durand", profile=Profile.PARENT)
    kids = [_user("lea.durand", profile=Profile.ELEVE), _user("tom.durand", profile=Profile.ELEVE)]
    kids[0].structures.set([a])
    kids[1].structures.set([b])
    for kid in kids:
        Relationship.objects.create(parent=parent, child=kid)
    assert {link.child.structures.get() for link in parent.child_links.all()} == {a, b}
    with pytest.raises(IntegrityError), transaction.atomic():
        Relationship.objects.create(parent=parent, child=kids[0])


def test_accounts_administered_by_is_scoped(two_schools):
    a, b = two_schools
    referent = _user("anne.martin")
    Function.objects.create(user=referent, role=Function.Role.REFERENT, structure=a)
    mine, theirs = _user("a.a"), _user("b.b")
    mine.structures.set([a])
    theirs.structures.set([b])
    assert list(accounts_administered_by(referent)) == [mine]


def test_external_id_is_unique_per_source(db):
    _user("a.a", external_source="aaf", external_id="X1")
    _user("b.b", external_source="csv:0771234A", external_id="X1")
    _user("c.c")  # no external id: many may have none
    _user("d.d")
    with pytest.raises(IntegrityError), transaction.atomic():
        _user("e.e", external_source="aaf", external_id="X1")


def test_deactivated_leaver_is_not_active(db):
    from django.utils import timezone

    user = _user("a.a")
    assert user.is_active
    user.deactivated_at = timezone.now()
    assert not user.is_active


def test_only_a_regional_admin_appoints_and_dismisses_referents(two_schools):
    from portail.audit.models import Event
    from portail.directory.services import (
        NotAllowed,
        appoint_referent,
        dismiss_referent,
        make_regional_admin,
    )

    a, b = two_schools
    admin, referent, other = _user("paul.region"), _user("anne.martin"), _user("jean.autre")
    make_regional_admin(admin)
    appoint_referent(admin, referent, a)
    assert list(structures_administered_by(referent)) == [a]
    assert Event.objects.filter(tag="directory.referent.appointed", target=referent).exists()
    with pytest.raises(NotAllowed, match="Seul un administrateur régional"):
        appoint_referent(referent, other, a)  # a référent cannot make référents
    with pytest.raises(NotAllowed):
        appoint_referent(referent, referent, b)  # nor extend his own reach
    assert list(structures_administered_by(referent)) == [a]
    assert dismiss_referent(admin, referent, a)
    assert not structures_administered_by(referent).exists()


def test_operators_see_the_directory_in_django_admin(client, two_schools):
    admin_user = User.objects.create_superuser("root.ops", "cheval orange batterie agrafe")
    enter_admin(client, admin_user)
    for url in (
        "/admin/directory/structure/",
        "/admin/directory/schoolclass/",
        "/admin/directory/group/",
        "/admin/directory/relationship/",
        "/admin/directory/function/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    assert "0771234A" in client.get("/admin/directory/structure/").content.decode()
