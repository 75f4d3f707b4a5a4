"""The home page tiles and the administrator's registry."""

from html import unescape

import pytest

from portail.directory.models import Structure
from portail.sso.models import Application
from tests.conftest import enter_admin


def make_app(name, **fields):
    fields.setdefault("kind", Application.Kind.CAS)
    fields.setdefault("cas_service_patterns", f"https://{name.lower()}.example.test/")
    return Application.objects.create(
        name=name, short_label=name[:2], url=f"https://{name.lower()}.example.test/", **fields
    )


def test_home_shows_the_applications_of_the_users_profile_and_school(client, active_user, school):
    other_school = Structure.objects.create(uai="0931234B", name="Collège Jean Jaurès")
    make_app("Notes", description="Notes et absences")
    make_app("Moodle").structures.set([school])
    make_app("Elsewhere").structures.set([other_school])
    make_app("Pupils", profiles=["eleve"])
    make_app("Disabled", enabled=False)
    client.force_login(active_user)
    page = unescape(client.get("/").content.decode())
    assert "Mes applications" in page
    assert "Notes" in page and "Notes et absences" in page
    assert 'href="https://notes.example.test/"' in page
    assert "Moodle" in page
    for hidden in ("Elsewhere", "Pupils", "Disabled"):
        assert hidden not in page


def test_home_without_application_says_so(client, active_user):
    client.force_login(active_user)
    assert "Aucune application" in unescape(client.get("/").content.decode())


@pytest.mark.parametrize(
    ("patterns", "service", "admitted"),
    [
        ("https://a.example.test/", "https://a.example.test/x?y=1", True),
        ("https://a.example.test", "https://a.example.test/x", True),
        ("https://a.example.test", "https://a.example.test.evil.example/", False),
        ("https://a.example.test", "https://a.example.test@evil.example/", False),
        ("^https://a\\.example\\.test/[a-z]+$", "https://a.example.test/abc", True),
        ("^https://a\\.example\\.test/[a-z]+$", "https://a.example.test/abc/../x", False),
    ],
)
def test_service_patterns(patterns, service, admitted):
    assert Application(cas_service_patterns=patterns).matches_service(service) is admitted


def test_admin_lists_and_edits_applications(client, db):
    from portail.accounts.models import User

    admin = User.objects.create_superuser("admin.region", "un mot de passe solide 42")
    make_app("Notes")
    enter_admin(client, admin)
    assert client.get("/admin/sso/application/").status_code == 200
    assert client.get("/admin/sso/application/add/").status_code == 200
    assert client.get("/admin/oauth2_provider/application/add/").status_code == 200


def test_admin_registers_a_cas_application_with_its_release_list(client, db):
    from portail.accounts.models import User

    admin = User.objects.create_superuser("admin.region", "un mot de passe solide 42")
    enter_admin(client, admin)
    response = client.post(
        "/admin/sso/application/add/",
        {
            "name": "Pronote",
            "short_label": "PR",
            "url": "https://pronote.example.test/",
            "enabled": "on",
            "position": "10",
            "profiles": ["eleve", "parent"],
            "kind": "cas",
            "released_attributes": ["identifier", "uai"],
            "cas_service_patterns": "https://pronote.example.test/",
            "cas_single_logout": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    app = Application.objects.get(name="Pronote")
    assert app.profiles == ["eleve", "parent"]
    assert app.released_attributes == ["identifier", "uai"]


def test_admin_refuses_a_cas_application_without_pattern(client, db):
    from portail.accounts.models import User

    admin = User.objects.create_superuser("admin.region", "un mot de passe solide 42")
    enter_admin(client, admin)
    response = client.post(
        "/admin/sso/application/add/",
        {
            "name": "Pronote",
            "short_label": "PR",
            "url": "https://pronote.example.test/",
            "position": "10",
            "kind": "cas",
            "cas_service_patterns": "",
        },
    )
    assert response.status_code == 200
    assert "au moins un motif" in unescape(response.content.decode())
    assert not Application.objects.exists()
