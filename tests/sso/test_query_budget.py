"""SQL statements per SSO request: a budget each, so that the cuts of issue 9 §6 do not regress.

Counted in process with Django's test client (the statements are the same through `portail serve`).
Before the cuts (bench/README.md): 29 statements per code exchange, 30 per refresh; since the
perf2 branch 16, 17, and userinfo 2; with the token endpoint's lean path 3 and 3 on PostgreSQL.
"""

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from tests.sso.conftest import CAS_SERVICE, REDIRECT_URI, authorized_code

pytestmark = pytest.mark.django_db(transaction=True)


def statements(call):
    with CaptureQueriesContext(connection) as queries:
        answer = call()
    # BEGIN/COMMIT/SAVEPOINT are not statements of ours (and SQLite shows none of them).
    counted = [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT"))
    ]
    return answer, counted


def test_token_endpoint_and_userinfo_stay_within_their_statement_budget(
    logged_in, oidc_client, rp_secret
):
    basic = base64.b64encode(f"{oidc_client.client_id}:{rp_secret}".encode()).decode()
    server = HttpClient(HTTP_AUTHORIZATION=f"Basic {basic}")
    code, verifier = authorized_code(logged_in, oidc_client)
    answer, exchange = statements(
        lambda: server.post(
            "/o/token/",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
        )
    )
    tokens = answer.json()
    assert answer.status_code == 200 and "id_token" in tokens, tokens
    # The lean path (portail/sso/token_endpoint.py): the code with its client and login time, the
    # user's schools (a released claim), then on PostgreSQL one statement that consumes the code
    # and stores every row (one DELETE or INSERT each elsewhere).
    postgresql = connection.vendor == "postgresql"
    assert len(exchange) <= (3 if postgresql else 9), "\n".join(exchange)

    answer, refresh = statements(
        lambda: server.post(
            "/o/token/",
            {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
    )
    assert answer.status_code == 200 and "id_token" in answer.json()
    assert len(refresh) <= (3 if postgresql else 7), "\n".join(refresh)

    access = answer.json()["access_token"]
    answer, userinfo = statements(
        lambda: HttpClient().get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}")
    )
    assert answer.status_code == 200 and answer.json()["identifier"] == "jean.dupont"
    assert len(userinfo) <= 2, "\n".join(userinfo)

    # The code, once exchanged, is gone with its authorization time (one DELETE each).
    again = server.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_service_validate_stays_within_its_statement_budget(logged_in, cas_app):
    location = logged_in.get("/cas/login", {"service": CAS_SERVICE})["Location"]
    ticket = parse_qs(urlsplit(location).query)["ticket"][0]
    answer, validate = statements(
        lambda: HttpClient().get(
            "/cas/p3/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE}
        )
    )
    assert b"<cas:user>" in answer.content
    assert len(validate) <= 1, "\n".join(validate)


def test_the_id_token_kept_between_validator_calls_belongs_to_the_thread_that_stored_it():
    """The toolkit shares one validator between concurrent requests: the ID token row kept from
    its storage to the access token must be this request's (else two access tokens would point to
    one ID token and the second exchange would fail)."""
    import threading

    from portail.sso.oidc import PortailOAuth2Validator, remember_signed_id_token

    validator = PortailOAuth2Validator()
    first_stored, second_stored, loaded = threading.Event(), threading.Event(), {}

    def first():
        remember_signed_id_token("jwt-of-first", "row of first")
        first_stored.set()
        second_stored.wait(5)
        loaded["first"] = validator._load_id_token("jwt-of-first")

    def second():
        first_stored.wait(5)
        remember_signed_id_token("jwt-of-second", "row of second")
        second_stored.set()
        loaded["second"] = validator._load_id_token("jwt-of-second")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert loaded == {"first": "row of first", "second": "row of second"}
