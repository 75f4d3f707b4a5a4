"""The regional administrator names and dismisses référents ENT; nobody else reaches those pages."""

import pytest
from django.urls import reverse

from portail.accounts.models import Profile, State
from portail.audit.models import Event
from portail.console import urls as console_urls
from portail.directory.models import Function, structures_administered_by
from tests.conftest import enter_admin

from .conftest import enrol, staff, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def regional(db):
    admin = staff("regis.region", None, first_name="Régis", last_name="Région")
    Function.objects.create(user=admin, role=Function.Role.REGIONAL_ADMIN)
    return admin


@pytest.fixture
def region(client, regional):
    enrol(regional)
    enter_admin(client, regional)  # logged in, second factor checked
    return client


@pytest.fixture
def teacher(school):
    user = staff("claire.noir", school, first_name="Claire", last_name="Noir")
    user.profile = Profile.ENSEIGNANT
    user.save()
    return user


def regional_patterns():
    return [p for p in console_urls.urlpatterns if "structure_pk" in p.pattern.converters]


def test_list_shows_every_structure_and_its_referents(region, school, school_b, referent):
    page = text(region.get("/console/referents"))
    assert "Lycée Berthe Morisot" in page and school.name in page
    assert "Anne Martin (anne.martin)" in page
    found = text(region.get("/console/referents?q=0771235B"))
    assert "Lycée Berthe Morisot" in found and school.name not in found
    assert "Référents ENT" in text(region.get("/console/"))  # in the navigation


def test_regional_admin_appoints_a_teacher_found_by_name(region, regional, school, teacher):
    page = text(region.get(f"/console/referents/{school.pk}/?q=noir"))
    assert "claire.noir" in page
    url = reverse("console:appoint_referent", kwargs={"structure_pk": school.pk, "pk": teacher.pk})
    assert "Nommer référent" in text(region.get(url))
    assert not structures_administered_by(teacher).exists()  # a GET changes nothing
    response = region.post(url)
    assert response.status_code == 302
    assert list(structures_administered_by(teacher)) == [school]
    appointed = Event.objects.get(tag="directory.referent.appointed", target=teacher)
    assert appointed.actor == regional and appointed.data["structure"] == school.uai
    page = text(region.get(f"/console/referents/{school.pk}/"))
    assert "Retirer Claire Noir" in page and "Nommer Claire Noir" not in page


def test_regional_admin_dismisses_a_referent(region, regional, school, referent):
    url = reverse("console:dismiss_referent", kwargs={"structure_pk": school.pk, "pk": referent.pk})
    region.post(url)
    assert not Function.objects.filter(user=referent).exists()
    dismissed = Event.objects.get(tag="directory.referent.dismissed", target=referent)
    assert dismissed.actor == regional


def test_pupils_parents_and_unactivated_staff_cannot_be_appointed(
    region, school, pupil_a, parent_a
):
    pupil, _ = pupil_a
    pending = staff("paul.pending", school, first_name="Paul", last_name="Pending")
    pending.state = State.PENDING
    pending.save()
    page = text(region.get(f"/console/referents/{school.pk}/"))
    assert "elodie.dupre" not in page and "paul.pending" not in page
    for account in (pupil, parent_a, pending):
        url = reverse(
            "console:appoint_referent", kwargs={"structure_pk": school.pk, "pk": account.pk}
        )
        response = region.post(url, follow=True)
        assert "Un référent ENT est un enseignant ou un personnel" in text(response)
    assert not Function.objects.filter(role=Function.Role.REFERENT).exists()


def test_staff_of_another_school_cannot_be_appointed_here(region, school, school_b, referent_b):
    url = reverse(
        "console:appoint_referent", kwargs={"structure_pk": school.pk, "pk": referent_b.pk}
    )
    region.post(url)
    assert list(structures_administered_by(referent_b)) == [school_b]


def test_every_regional_url_answers_404_to_a_referent(console, referent, school, teacher):
    patterns = regional_patterns()
    assert len(patterns) == 3
    urls = ["/console/referents"]
    for pattern in patterns:
        kwargs = {"structure_pk": school.pk}
        if "pk" in pattern.pattern.converters:
            urls += [
                reverse(f"console:{pattern.name}", kwargs={**kwargs, "pk": pk})
                for pk in (teacher.pk, referent.pk)
            ]
        else:
            urls.append(reverse(f"console:{pattern.name}", kwargs=kwargs))
    for url in urls:
        for method in ("get", "post"):
            assert getattr(console, method)(url).status_code == 404, (method, url)
    assert "Référents ENT</a>" not in text(console.get("/console/"))
    assert list(structures_administered_by(teacher)) == []
    assert list(structures_administered_by(referent)) == [school]
    assert not Event.objects.filter(tag__startswith="directory.referent").exists()
