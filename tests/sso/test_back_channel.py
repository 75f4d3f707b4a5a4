"""The back-channel endpoints' short middleware stack (ops.middleware.BackChannelMiddleware) and
the lean userinfo (sso.views.PortailUserInfoView._userinfo): same answers as the full stack and
the toolkit."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.test import Client, RequestFactory, override_settings
from django.urls import path, resolve
from django.utils import timezone
from oauth2_provider.models import AccessToken
from oauth2_provider.views import UserInfoView

from portail.ops.middleware import (
    BACK_CHANNEL_PATHS,
    BackChannelMiddleware,
    FramingPolicyMiddleware,
)

pytestmark = pytest.mark.django_db

FULL_STACK = [m for m in settings.MIDDLEWARE if not m.endswith(".BackChannelMiddleware")]


def probe(request):
    """What the middleware left on the request."""
    return JsonResponse(
        {
            "session": hasattr(request, "session"),
            "user": hasattr(request, "user"),
            "client_ip": getattr(request, "client_ip", None),
            "route": request.resolver_match.url_name,
        }
    )


def cut(request):
    from django.db import OperationalError

    raise OperationalError("connection to server lost")  # what psycopg raises mid-request


urlpatterns = [
    path("o/userinfo/", probe, name="back"),
    path("o/introspect/", cut, name="back-cut"),
    path("cas/p3/serviceValidate", probe, name="back-cas"),
    path("auth/login", probe, name="browser"),
]


def token(user, client, raw="raw-bc", scope="openid profile ent", minutes=5):
    return AccessToken.objects.create(
        user=user,
        application=client,
        token=raw,
        expires=timezone.now() + timedelta(minutes=minutes),
        scope=scope,
    )


def test_every_back_channel_path_is_a_route_that_reads_no_cookie():
    for back_path in BACK_CHANNEL_PATHS:
        func = resolve(back_path).func
        view_class = getattr(func, "view_class", None)
        safe_only = view_class is not None and not (
            hasattr(view_class, "post") or hasattr(view_class, "put")
        )
        # CSRF is what a POST would lose: each POST-able one must be exempt already.
        assert (
            getattr(func, "csrf_exempt", False)
            or safe_only
            or back_path.startswith(("/health", "/healthz"))
        ), back_path


@override_settings(ROOT_URLCONF=__name__)
def test_back_channel_requests_skip_the_browser_middleware_and_pages_do_not(client):
    for back_path in ("/o/userinfo/", "/cas/p3/serviceValidate"):
        answer = client.get(back_path).json()
        assert answer["session"] is False and answer["user"] is False
        assert answer["client_ip"] == "127.0.0.1"  # ClientIPMiddleware still ran
        assert answer["route"] in ("back", "back-cas")
    page = client.get("/auth/login").json()
    assert page == {"session": True, "user": True, "client_ip": "127.0.0.1", "route": "browser"}
    # A lost database is still the French 503 page (DatabaseUnavailableMiddleware is kept).
    lost = Client(raise_request_exception=False).post("/o/introspect/")
    assert lost.status_code == 503 and lost["Retry-After"] == "60"
    assert "Service momentanément indisponible" in lost.content.decode()
    # A path that only looks like one (no slash, a suffix) goes the full way.
    assert client.get("/o/userinfo").status_code in (301, 404)


def _requests(user, client_app, cas_app):
    good = token(user, client_app, "good-bc").token
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {good}"}
    return [
        ("get", "/o/userinfo/", {}, bearer),
        ("get", "/o/userinfo/", {}, {"HTTP_AUTHORIZATION": "Bearer nope"}),
        ("get", "/cas/p3/serviceValidate", {"ticket": "ST-x", "service": "https://x/"}, {}),
        (
            "get",
            "/cas/serviceValidate",
            {"ticket": "ST-x", "service": "https://x/", "format": "JSON"},
            {},
        ),
        ("get", "/cas/validate", {"ticket": "ST-x", "service": "https://x/"}, {}),
        ("get", "/o/.well-known/jwks.json", {}, {}),
        ("get", "/health/live", {}, {}),
        ("post", "/o/token/", {"grant_type": "authorization_code", "code": "x"}, {}),
        ("post", "/o/introspect/", {"token": good}, {}),
        ("post", "/o/revoke_token/", {"token": "x", "client_id": "nope"}, {}),
    ]


# Headers that the browser middleware adds, and per-request values.
_VARYING = {"x-request-id", "expires", "vary", "content-language", "set-cookie"}


def test_back_channel_answers_carry_the_full_stacks_headers(
    client, active_user, oidc_client, cas_app
):
    for method, url, data, extra in _requests(active_user, oidc_client, cas_app):
        short = getattr(client, method)(url, data, **extra)
        with override_settings(MIDDLEWARE=FULL_STACK):
            full = getattr(client, method)(url, data, **extra)
        assert short.status_code == full.status_code, url
        assert short.content == full.content or url == "/o/userinfo/" and short.status_code != 200
        short_headers = {
            k.lower(): v for k, v in short.headers.items() if k.lower() not in _VARYING
        }
        full_headers = {k.lower(): v for k, v in full.headers.items() if k.lower() not in _VARYING}
        assert short_headers == full_headers, url
        # The headers every answer needs are there (ASVS 5.0 V3.4; RFC 6749 §5.1 no-store).
        assert short["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in short["Content-Security-Policy"]
        assert short["X-Content-Type-Options"] == "nosniff"
        if "jwks" not in url:
            assert "no-store" in short["Cache-Control"]
        else:
            assert short["Access-Control-Allow-Origin"] == "*"  # CORS on the public keys


def test_a_per_response_policy_still_goes_through_django_csp(rf):
    def view(request):
        response = HttpResponse("x")
        response._csp_update = {"form-action": ["https://sp.example.test"]}
        return response

    answer = FramingPolicyMiddleware(view)(rf.get("/cas/p3/serviceValidate"))
    assert "form-action 'self' https://sp.example.test" in answer["Content-Security-Policy"]
    plain = FramingPolicyMiddleware(lambda request: HttpResponse("x"))(rf.get("/health/live"))
    assert "form-action 'self';" in plain["Content-Security-Policy"] + ";"
    assert plain["X-Frame-Options"] == "DENY"


def test_the_dispatch_falls_back_to_the_rest_of_the_stack(rf):
    seen = []
    middleware = BackChannelMiddleware(lambda request: seen.append(request.path) or HttpResponse())
    middleware(rf.get("/auth/login"))
    assert seen == ["/auth/login"]


def _toolkit(request_kwargs):
    """The same request answered by django-oauth-toolkit's own UserInfoView."""
    method, data, extra = request_kwargs
    request = getattr(RequestFactory(), method)("/o/userinfo/", data, **extra)
    return UserInfoView.as_view()(request)


@pytest.mark.parametrize(
    "case",
    ["valid", "valid-post", "in-body", "expired", "no-openid", "unknown", "malformed", "none"],
)
def test_the_lean_userinfo_answers_as_the_toolkit(client, active_user, oidc_client, case):
    good = token(active_user, oidc_client, "tok-good").token
    token(active_user, oidc_client, "tok-old", minutes=-1)
    token(active_user, oidc_client, "tok-api", scope="profile ent")
    requests = {
        "valid": ("get", {}, {"HTTP_AUTHORIZATION": f"Bearer {good}"}),
        "valid-post": ("post", {}, {"HTTP_AUTHORIZATION": f"bearer {good}"}),
        "in-body": ("post", {"access_token": good}, {}),
        "expired": ("get", {}, {"HTTP_AUTHORIZATION": "Bearer tok-old"}),
        "no-openid": ("get", {}, {"HTTP_AUTHORIZATION": "Bearer tok-api"}),
        "unknown": ("get", {}, {"HTTP_AUTHORIZATION": "Bearer tok-unknown"}),
        "malformed": ("get", {}, {"HTTP_AUTHORIZATION": f"Bearer {good} extra"}),
        "none": ("get", {}, {}),
    }
    method, data, extra = requests[case]
    ours = getattr(client, method)("/o/userinfo/", data, **extra)
    theirs = _toolkit(requests[case])
    assert ours.status_code == theirs.status_code
    assert ours.get("WWW-Authenticate") == theirs.get("WWW-Authenticate")
    assert ours["Content-Type"] == theirs["Content-Type"]
    if theirs.status_code == 200:
        claims = json.loads(ours.content)
        assert claims == json.loads(theirs.content)
        assert claims["identifier"] == active_user.identifier and claims["sub"]
    assert {
        "valid": 200,
        "valid-post": 200,
        "in-body": 200,
        "expired": 401,
        "no-openid": 401,  # is_valid(["openid"]) fails: invalid_token
        "unknown": 401,
        "malformed": 401,
        "none": 401,
    }[case] == ours.status_code


def test_the_validator_says_what_the_toolkit_would_ask_inspect():
    from oauth2_provider.oauth2_validators import OAuth2Validator

    from portail.sso.oidc import PortailOAuth2Validator

    # The toolkit's own answer for this class, computed from the signature.
    assert (
        OAuth2Validator._get_additional_claims_is_request_agnostic.__func__(PortailOAuth2Validator)
        is PortailOAuth2Validator._get_additional_claims_is_request_agnostic()
    )


def test_uai_and_classes_come_in_one_statement_in_the_orms_order(active_user, school):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portail.directory.models import SchoolClass, Structure
    from portail.sso.services import user_attributes

    other = Structure.objects.create(uai="0750001A", name="Collège Anatole")  # sorts first
    active_user.structures.add(other)
    for structure, name in ((school, "1ère B"), (other, "6e 2"), (school, "1ère A")):
        active_user.classes.add(SchoolClass.objects.create(structure=structure, name=name))
    released = ["identifier", "uai", "classes", "email"]
    user_attributes(active_user, released)  # the SQL is written at the first call
    with CaptureQueriesContext(connection) as queries:
        values = user_attributes(active_user, released)
    assert values["uai"] == [u for (u,) in active_user.structures.values_list("uai")]
    assert values["classes"] == [c for (c,) in active_user.classes.values_list("name")]
    assert values["uai"][0] == "0750001A" and len(values["classes"]) >= 3
    assert list(values) == ["identifier", "uai", "classes", "email"]
    assert len(queries) == (1 if connection.vendor == "postgresql" else 2)
    # One released alone: its own read, as before.
    assert user_attributes(active_user, ["classes"])["classes"] == values["classes"]
    assert user_attributes(active_user, ["identifier"]) == {"identifier": active_user.identifier}
