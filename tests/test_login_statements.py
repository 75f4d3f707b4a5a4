"""A login's statements (issue 8 §1, bench/login.py): what a clean login does not need to write,
and that the counters still start again from zero after a failure."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portail.security.models import LoginFailures
from tests.helpers import STRONG_PASSWORD, login

pytestmark = pytest.mark.django_db


def test_a_clean_login_resets_no_counter_and_a_login_after_a_failure_does(client, active_user):
    with CaptureQueriesContext(connection) as queries:
        assert login(client, "jean.dupont", STRONG_PASSWORD).status_code == 302
    writes = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith(("UPDATE", "INSERT"))
    ]
    assert not [sql for sql in writes if "security_loginfailures" in sql], writes

    client.logout()
    assert login(client, "jean.dupont", "mauvais mot de passe").status_code == 200
    assert LoginFailures.objects.get(user=active_user, device="").consecutive == 1
    assert login(client, "jean.dupont", STRONG_PASSWORD).status_code == 302
    assert LoginFailures.objects.get(user=active_user, device="").consecutive == 0
