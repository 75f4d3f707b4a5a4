"""The « service momentanément indisponible » page for a database that cannot be reached, whether
the view or a middleware (a session save, a user lookup) met it; other errors stay 500s.

The database here is a real unreachable one: an SQLite file in a directory that does not exist,
so each connection attempt raises sqlite3's OperationalError (the cut PostgreSQL of a real server
is in test_faults_postgres.py).
"""

import pytest
from django.db.utils import ConnectionHandler
from django.test import Client, override_settings
from django.urls import path

from portail import urls as portail_urls
from tests.helpers import text

UNREACHABLE = {}  # the test's own connections, outside the test database's guard


def unreachable_query():
    with UNREACHABLE["handler"]["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def view_needing_the_database(request):
    unreachable_query()


def failing_view(request):
    raise RuntimeError("not a database problem")


def ok_view(request):
    from django.http import HttpResponse

    return HttpResponse("ok")


class SavingMiddleware:
    """Stands where SessionMiddleware saves the session: after the view, outside it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path == "/after-view":
            unreachable_query()
        return response


urlpatterns = [
    path("needs-database", view_needing_the_database),
    path("after-view", ok_view),
    path("boom", failing_view),
    *portail_urls.urlpatterns,
]
handler500 = portail_urls.handler500


@pytest.fixture
def unreachable_database(tmp_path):
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(tmp_path / "no-such-directory" / "db.sqlite3"),
            }
        }
    )
    UNREACHABLE["handler"] = handler
    yield
    handler.close_all()
    UNREACHABLE.clear()


def assert_unavailable_page(response):
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    page = text(response)
    assert "Service momentanément indisponible" in page
    assert "Veuillez réessayer dans une minute" in page
    assert "Traceback" not in page and "OperationalError" not in page


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.test_faults_pages")
def test_a_view_that_cannot_reach_the_database_answers_503(unreachable_database):
    assert_unavailable_page(Client(raise_request_exception=False).get("/needs-database"))


@pytest.mark.django_db
def test_a_middleware_that_cannot_reach_the_database_answers_503(unreachable_database, settings):
    settings.ROOT_URLCONF = "tests.test_faults_pages"
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.test_faults_pages.SavingMiddleware"]
    assert_unavailable_page(Client(raise_request_exception=False).get("/after-view"))


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.test_faults_pages")
def test_other_errors_stay_the_500_page():
    response = Client(raise_request_exception=False).get("/boom")
    assert response.status_code == 500 and "Erreur du serveur" in text(response)
