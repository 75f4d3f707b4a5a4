"""Structured logs: one JSON line per request with the route name, never a token, code, password
or query string; the request id taken from X-Request-ID when sane; plain text in development."""

import io
import json
import logging
from urllib.parse import urlsplit

import pytest

from portail.ops.logs import JsonFormatter, RequestIdFilter, TextFormatter
from tests import servers
from tests.helpers import STRONG_PASSWORD, login


@pytest.fixture
def log_lines():
    """Everything logged during the test, formatted as production formats it (JSON lines)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)

    def read():
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    read.raw = stream.getvalue
    yield read
    root.removeHandler(handler)
    root.setLevel(previous)


def request_lines(lines):
    return [line for line in lines if line["logger"] == "portail.request"]


@pytest.mark.django_db(transaction=True)
def test_a_reset_link_request_logs_its_route_name_and_never_its_token(
    client, smtp, active_user, log_lines
):
    client.post("/auth/lost-password", {"identifier": "jean.dupont"}, follow=True)
    link = smtp.only(to="jean.dupont@example.org").links(
        prefix="https://ent.example.test/auth/reset/"
    )[0]
    token = urlsplit(link).path.removeprefix("/auth/reset/")
    assert len(token) > 20
    response = client.get(urlsplit(link).path + "?utm=secret-query-value")
    assert response.status_code == 302  # the token moves into the session

    line = request_lines(log_lines())[-1]
    assert line["route"] == "recovery:reset_link"
    assert line["method"] == "GET" and line["status"] == 302
    assert isinstance(line["duration_ms"], float)
    assert line["client_ip"] == "127.0.0.1"
    assert line["request_id"] == response["X-Request-ID"]
    everything = log_lines.raw()
    assert token not in everything
    assert "secret-query-value" not in everything
    assert "/auth/reset/" not in everything


@pytest.mark.django_db
def test_a_login_logs_no_password_and_a_404_no_path(client, active_user, log_lines):
    login(client, "jean.dupont", STRONG_PASSWORD)
    login(client, "jean.dupont", "mot de passe faux tapé")
    client.get("/auth/unknown-token-abcdef123456")
    everything = log_lines.raw()
    assert STRONG_PASSWORD not in everything and "mot de passe faux" not in everything
    assert "Not Found: unmatched" in everything
    assert "unknown-token-abcdef123456" not in everything  # Django's « Not Found: <path> » too
    routes = [(line["route"], line["status"]) for line in request_lines(log_lines())]
    assert routes == [("accounts:login", 302), ("accounts:login", 200), ("unmatched", 404)]


@pytest.mark.django_db
def test_request_id_is_taken_when_sane_and_replaced_otherwise(client, log_lines):
    sane = "3f9c2a1e-5b7d-4c8e-9a6f-0123456789ab"
    response = client.get("/auth/login", headers={"X-Request-ID": sane})
    assert response["X-Request-ID"] == sane
    forged = 'x" injected\n{"level": "CRITICAL"}'
    response = client.get("/auth/login", headers={"X-Request-ID": forged})
    generated = response["X-Request-ID"]
    assert generated != forged and len(generated) == 32 and generated.isalnum()
    ids = [line["request_id"] for line in request_lines(log_lines())]
    assert ids == [sane, generated]
    assert "injected" not in log_lines.raw()


def test_development_logs_are_plain_text():
    record = logging.makeLogRecord(
        {"name": "portail.request", "levelname": "INFO", "msg": "GET home 200", "route": "home"}
    )
    line = TextFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line == "INFO portail.request: GET home 200 route=home"
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.mark.parametrize(
    ("debug", "formatter"),
    [("1", "portail.ops.logs.TextFormatter"), ("0", "portail.ops.logs.JsonFormatter")],
)
def test_settings_choose_json_lines_in_production_only(debug, formatter):
    code = "import portail.settings as s; print(s.LOGGING['formatters']['portail']['()'])"
    out = servers.python_output(
        code,
        PORTAIL_DEBUG=debug,
        PORTAIL_ALLOW_INSECURE_KEY="1",
        PORTAIL_BASE_URL="https://ent.example.test",
        EMAIL_URL="smtp://127.0.0.1:25",
    ).strip()
    assert out == formatter
