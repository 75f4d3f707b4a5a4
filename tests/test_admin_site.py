import pytest

from portail.console.views import SESSION_VERIFIED
from tests.helpers import STRONG_PASSWORD, login

pytestmark = pytest.mark.django_db


def test_admin_login_is_the_portal_login(client):
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/auth/login?next=/admin/")
    # The admin's own login form (no rate limit, no audit) is gone.
    response = client.post("/admin/login/", {"username": "x", "password": "y"})
    assert response.status_code == 302 and "/auth/login" in response["Location"]


def test_staff_reaches_admin_only_after_the_second_factor(client, active_user):
    active_user.is_staff = active_user.is_superuser = True
    active_user.save()
    login(client, "jean.dupont", STRONG_PASSWORD)
    response = client.get("/admin/", follow=True)
    # Through the admin's login to the console's TOTP check (or enrolment), never the admin.
    assert [url for url, _ in response.redirect_chain][:2] == [
        "/admin/login/?next=/admin/",
        "/console/securite/verification?next=%2Fadmin%2F",
    ]
    session = client.session
    session[SESSION_VERIFIED] = active_user.pk
    session.save()
    assert client.get("/admin/").status_code == 200


def test_non_staff_user_is_refused(client, active_user):
    login(client, "jean.dupont", STRONG_PASSWORD)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
