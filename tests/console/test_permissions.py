"""A référent of school A can neither read nor change anything of school B, through any URL."""

import pytest
from django.urls import reverse

from portail.accounts.models import State, User
from portail.accounts.services import usable_activation_token
from portail.audit.models import Event
from portail.console import urls as console_urls
from portail.directory.models import Relationship
from tests.conftest import enter_admin

from .conftest import enrol, staff, text

pytestmark = pytest.mark.django_db

POST_DATA = {
    "identifier": "pris.en.otage",
    "first_name": "Pirate",
    "last_name": "Pirate",
    "other": "berenice.berger",
    "code": "abcdefgh",
}


def account_patterns():
    # The regional pages (with a structure_pk) have their own matrix in test_referents.py.
    return [
        p
        for p in console_urls.urlpatterns
        if "pk" in p.pattern.converters and "structure_pk" not in p.pattern.converters
    ]


def snapshot(user):
    user.refresh_from_db()
    return (user.identifier, user.first_name, user.last_name, user.state, user.session_stamp)


def test_every_account_url_answers_404_for_school_b(console, pupil_a, parent_a, b_side):
    a_pupil, _ = pupil_a
    targets = [b_side["pupil"], b_side["parent"]]
    before = [snapshot(u) for u in targets]
    checked = 0
    for pattern in account_patterns():
        kwarg_sets = [{"pk": t.pk} for t in targets]
        if "other_pk" in pattern.pattern.converters:
            kwarg_sets = [
                {"pk": b_side["pupil"].pk, "other_pk": b_side["parent"].pk},
                {"pk": a_pupil.pk, "other_pk": b_side["parent"].pk},
                {"pk": b_side["pupil"].pk, "other_pk": parent_a.pk},
            ]
        for kwargs in kwarg_sets:
            url = reverse(f"console:{pattern.name}", kwargs=kwargs)
            for method in ("get", "post"):
                response = getattr(console, method)(url, POST_DATA)
                assert response.status_code in (403, 404, 405), (method, url, response.status_code)
                if response.status_code == 405:  # POST-only: its POST is checked too
                    continue
                assert "Berger" not in text(response), (method, url)
                checked += 1
    assert checked >= 20
    assert [snapshot(u) for u in targets] == before
    assert usable_activation_token(b_side["pupil"], b_side["code"]) is not None
    assert Relationship.objects.filter(parent=b_side["parent"], child=b_side["pupil"]).exists()
    assert not Event.objects.filter(target__in=targets).exclude(tag__startswith="account.").exists()


def test_search_and_audit_show_nothing_of_school_b(console, pupil_a, b_side):
    from portail.audit.services import record

    record("account.login.failed", target=b_side["parent"])
    found = text(console.get("/console/?q=Berger"))
    assert "bastien.berger" not in found and "0 compte" in found
    assert "Berger" not in text(console.get("/console/"))
    assert "Dupré" in text(console.get("/console/"))
    page = text(console.get("/console/journal"))
    assert "berenice.berger" not in page
    # A class of B is not a valid choice of A's filters.
    response = console.get(f"/console/?school_class={b_side['class'].pk}")
    assert "Berger" not in text(response)


def test_letters_refuse_a_class_of_school_b_and_issue_nothing(console, b_side):
    response = console.post(
        "/console/fiches", {"school_class": b_side["class"].pk, "per_page": 1, "renew": "on"}
    )
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
    assert "Berger" not in text(response)
    assert usable_activation_token(b_side["pupil"], b_side["code"]) is not None


def test_letters_of_a_whole_school_contain_nothing_of_school_b(console, pupil_a, b_side):
    assert console.post("/console/fiches", {"per_page": 8, "renew": "on"}).status_code == 302
    batch = console.session["console_letters"]["id"]
    response = console.post(
        "/console/fiches/telecharger", {"batch": batch, "output": "csv", "per_page": "8"}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = response.content.decode()
    assert "elodie.dupre" in body and "Berger" not in body
    assert usable_activation_token(b_side["pupil"], b_side["code"]) is not None


def test_referent_cannot_touch_another_referent_of_his_school(console, school, referent):
    from portail.directory.models import Function

    colleague = staff("claire.noir", school, first_name="Claire", last_name="Noir")
    Function.objects.create(user=colleague, role=Function.Role.REFERENT, structure=school)
    assert console.get(f"/console/comptes/{colleague.pk}/").status_code == 404
    assert console.post(f"/console/comptes/{colleague.pk}/bloquer").status_code == 404
    colleague.refresh_from_db()
    assert colleague.state == State.ACTIVE


def test_regional_admin_sees_both_schools(client, pupil_a, b_side):
    from portail.directory.models import Function

    admin = staff("regis.region", None, first_name="Régis", last_name="Région")
    Function.objects.create(user=admin, role=Function.Role.REGIONAL_ADMIN)
    enrol(admin)
    enter_admin(client, admin)
    page = text(client.get("/console/"))
    assert "Dupré" in page and "Berger" in page
    assert client.get(f"/console/comptes/{b_side['pupil'].pk}/").status_code == 200


def test_user_without_function_is_refused(client, active_user):
    client.force_login(active_user)
    assert client.get("/console/").status_code == 403
    assert client.get("/console/securite/enrolement").status_code == 403


def test_anonymous_is_sent_to_login(client, db):
    response = client.get("/console/journal")
    assert response.status_code == 302
    assert response["Location"] == "/auth/login?next=%2Fconsole%2Fjournal"


def test_referent_b_sees_his_own_school(client, referent_b, b_side):
    enrol(referent_b)
    enter_admin(client, referent_b)
    assert client.get(f"/console/comptes/{b_side['pupil'].pk}/").status_code == 200
    assert User.objects.get(pk=b_side["pupil"].pk).state == State.PENDING


def test_header_links_the_console_for_function_holders_only(client, referent, active_user):
    client.force_login(referent)
    assert "Console du référent" in text(client.get("/"))
    client.force_login(active_user)
    assert "Console du référent" not in text(client.get("/"))
