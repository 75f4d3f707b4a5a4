"""CAS endpoints (CAS Protocol 3.0, with 1.0 and 2.0) and the OIDC authorization gate."""

import base64
import hashlib
import json
import logging
import time
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from lxml import etree
from oauth2_provider.exceptions import OIDCError
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.oauth2_backends import OAuthLibCore, get_oauthlib_core
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.signals import app_authorized
from oauth2_provider.views import (
    AuthorizationView,
    ConnectDiscoveryInfoView,
    JwksInfoView,
    RPInitiatedLogoutView,
    TokenView,
    UserInfoView,
)
from oauthlib.common import Request as OAuthlibRequest

from portail.accounts import services as account_services
from portail.audit.services import record
from portail.ops.metrics import sso_validation
from portail.security import ratelimit

from . import cas_responses as answers
from . import client_assertions, oidc, oidc_logout, privacy, services, token_endpoint
from .models import Application

log = logging.getLogger(__name__)


def _flag(params, name) -> bool:
    # CAS 3.0 §2.1.1: "renew"/"gateway" are set by their presence; "false" is treated as unset.
    value = params.get(name)
    return value is not None and value.lower() != "false"


def _refused(request, exc, status=403):
    return render(request, "sso/refused.html", {"message": exc.message}, status=status)


def _to_application(request, url, name):
    """Redirect to the application, or, right after a login form, a page that moves on itself."""
    if services.follows_login_form(request):
        return render(request, "sso/continue.html", {"url": url, "name": name})
    return redirect(url)


@require_GET
def cas_login(request):
    service = request.GET.get("service", "")
    renew, gateway = _flag(request.GET, "renew"), _flag(request.GET, "gateway")
    app = None
    if service:
        try:
            app = services.registered_service(request, service)
        except services.UnknownService as exc:
            # An unregistered service never gets a ticket, nor a redirect (no open redirector).
            return _refused(request, exc)
    if not request.user.is_authenticated:
        if gateway and not renew and service:
            return redirect(service)  # CAS 3.0 §2.1.1: back to the service, without a ticket
        services.ask_for_credentials(request)
        return redirect_to_login(request.get_full_path())
    if not service:
        return redirect("home")
    if renew and not services.credentials_just_typed(request):
        # renew=true: single sign-on is bypassed, the password must be typed again.
        services.ask_for_credentials(request)
        return redirect_to_login(request.get_full_path())
    try:
        url = services.grant_service_ticket(request, service, renew=renew, app=app)
    except account_services.DomainError as exc:
        return _refused(request, exc)
    return _to_application(request, url, app.name)


@require_GET
def cas_logout(request):
    account_services.log_out(request)  # its signal sends the single logout requests
    # CAS 3.0 §2.3.1: only "service" may redirect; the 2.0 "url" parameter is ignored.
    service = request.GET.get("service", "")
    if service and services.find_cas_application(service) is not None:
        return redirect(service)
    return render(request, "sso/logged_out.html")


def _params(request):
    """The CAS parameters, from the query string or a form-encoded POST body (which wins)."""
    if request.method != "POST":
        return request.GET  # read only here: no copy (QueryDict.copy is a deep copy)
    params = request.GET.copy()
    params.update(request.POST)
    return params


def _validation_endpoint(view):
    """A server-to-server CAS endpoint: GET, or POST (some clients post their parameters).

    csrf_exempt on these endpoints only: they read no cookie and act for the calling
    application, with the ticket as its credential.
    """
    return csrf_exempt(require_http_methods(["GET", "POST"])(view))


def _format(request, params=None):
    """CAS 3.0 §2.5.1: XML (the default) or JSON; anything else is None."""
    value = (_params(request) if params is None else params).get("format", "XML").upper()
    return value if value in ("XML", "JSON") else None


INTERNAL_ERROR = services.CasError(
    "INTERNAL_ERROR", "An internal error occurred during ticket validation."
)


def _validation(request, *, accept_proxy_tickets: bool):
    params = _params(request)
    answer_format = _format(request, params)
    as_json = answer_format == "JSON"
    try:
        result = services.validate_ticket(
            params.get("ticket", ""),
            params.get("service", ""),
            accept_proxy_tickets=accept_proxy_tickets,
            renew=_flag(params, "renew"),
            # An unusable answer format fails the validation: no PGT delivered for it.
            pgt_url=params.get("pgtUrl", "") if answer_format else "",
        )
    except services.CasError as exc:
        sso_validation("cas", False)
        return answers.authentication_failure(exc, as_json=as_json)
    except Exception:
        log.exception("CAS validation failed unexpectedly")
        sso_validation("cas", False)
        return answers.authentication_failure(INTERNAL_ERROR, as_json=as_json)
    sso_validation("cas", answer_format is not None)
    if answer_format is None:
        # The ticket was consumed all the same (CAS 3.0 §3.1.1).
        error = services.CasError("INVALID_REQUEST", "Unsupported format: use XML or JSON.")
        return answers.authentication_failure(error, as_json=False)
    return answers.authentication_success(result, as_json=as_json)


@_validation_endpoint
def cas_validate(request):
    """CAS 1.0: "yes\\n<user>\\n" or "no\\n\\n"; service tickets only."""
    params = _params(request)
    try:
        result = services.validate_ticket(
            params.get("ticket", ""),
            params.get("service", ""),
            accept_proxy_tickets=False,
            renew=_flag(params, "renew"),
        )
    except services.CasError:
        result = None
    except Exception:
        log.exception("CAS 1.0 validation failed unexpectedly")
        result = None
    sso_validation("cas", result is not None)
    return answers.validate_v1(result)


@_validation_endpoint
def cas_service_validate(request):
    return _validation(request, accept_proxy_tickets=False)


@_validation_endpoint
def cas_proxy_validate(request):
    return _validation(request, accept_proxy_tickets=True)


SAML_REQUEST_MAX_BYTES = 16 * 1024  # a samlp:Request with one artifact is under 1 KiB
_SAML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)


def _assertion_artifact(body: bytes) -> str | None:
    """The ticket in a SOAP samlp:Request (CAS 3.0 §4.2.2), or None if there is none."""
    if len(body) > SAML_REQUEST_MAX_BYTES or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None
    try:
        document = etree.fromstring(body, _SAML_PARSER)
    except etree.XMLSyntaxError:
        return None
    artifact = document.find(f".//{{{answers.SAML1P_NS}}}AssertionArtifact")
    if artifact is None:
        return None
    return (artifact.text or "").strip() or None


@csrf_exempt  # server to server: the application's back end posts the ticket, no cookie is read
@require_POST
def cas_saml_validate(request):
    """/samlValidate (CAS 3.0 §4.2): SAML 1.1 over SOAP, as phpCAS's SAML mode uses it."""
    ticket = _assertion_artifact(request.body)
    if ticket is None:
        return answers.saml_failure("samlp:Requester", "No AssertionArtifact in the request.")
    service = request.GET.get("TARGET", "")
    try:
        result = services.validate_ticket(ticket, service, accept_proxy_tickets=False, renew=False)
    except services.CasError as exc:
        return answers.saml_failure("samlp:Responder", f"{exc.code}: {exc.description}")
    except Exception:
        log.exception("CAS SAML validation failed unexpectedly")
        return answers.saml_failure("samlp:Responder", INTERNAL_ERROR.description)
    return answers.saml_success(result, service, settings.PORTAIL_BASE_URL + "/cas/")


@_validation_endpoint
def cas_proxy(request):
    params = _params(request)
    answer_format = _format(request)
    as_json = answer_format == "JSON"
    if answer_format is None:
        error = services.CasError("INVALID_REQUEST", "Unsupported format: use XML or JSON.")
        return answers.proxy_failure(error, as_json=False)
    try:
        ticket = services.grant_proxy_ticket(params.get("pgt", ""), params.get("targetService", ""))
    except services.CasError as exc:
        return answers.proxy_failure(exc, as_json=as_json)
    except Exception:
        log.exception("CAS proxy failed unexpectedly")
        error = services.CasError("INTERNAL_ERROR", "An internal error occurred.")
        return answers.proxy_failure(error, as_json=as_json)
    return answers.proxy_success(ticket, as_json=as_json)


def _add_query(url: str, params: dict) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _is_portal_form(request) -> bool:
    # The portal's own consent and logout-confirmation forms always carry the CSRF token;
    # "allow" is their approval button.
    return "csrfmiddlewaretoken" in request.POST or "allow" in request.POST


def _posted_request_as_get(request):
    """A protocol request POSTed by a relying party, answered by a 303 to its GET form.

    OIDC Core §3.1.2.1 and RP-Initiated Logout §2 let the client POST (form-encoded) what it
    could send by GET; the rest of the flow (login redirects included) resumes GET requests.
    """
    # urlencode() of the QueryDict keeps repeated parameters (RFC 8707 "resource").
    response = HttpResponseRedirect(request.path + "?" + request.POST.urlencode())
    response.status_code = 303
    return response


@method_decorator(csrf_exempt, name="dispatch")  # only the authorization request; see dispatch
class PortailAuthorizationView(AuthorizationView):
    """DOT's authorization endpoint, refused to users whose profile or school lacks the app.

    The check sits in dispatch so that it covers GET and the consent form's POST alike (the
    toolkit's form_valid would otherwise issue a code on its own); both answers that carry a code
    go through _issued (remembered for logout, audited, CSP-safe redirect).

    Every redirect to the client carries ``iss`` (RFC 9207 §2), errors included; an error goes
    back to the client only when its client_id and redirect_uri are registered (RFC 6749
    §4.1.2.1), otherwise the user reads a French page.
    """

    def _client_id(self, request):
        return request.GET.get("client_id") or request.POST.get("client_id") or ""

    def _prompt(self, request) -> list[str]:
        return request.GET.get("prompt", "").split()

    def _max_age_exceeded(self, request) -> bool:
        try:
            max_age = int(request.GET["max_age"])
        except (KeyError, ValueError):
            return False
        typed = request.session.get(services.AUTH_TIME_KEY)
        return typed is None or time.time() - typed >= max_age

    def _wants_fresh_credentials(self, request) -> bool:
        """OIDC Core §3.1.2.1: prompt=login, or a max_age the session's login is older than."""
        return "login" in self._prompt(request) or self._max_age_exceeded(request)

    def _acr_reached(self, request) -> bool:
        """Whether this session meets the acr_values the client asked (OIDC Core §3.1.2.1).

        Values the portal does not know are ignored (acr is a voluntary claim); among its two
        levels, the password level is met by any session, the second-factor level only by a
        session where the console's second factor was passed (privacy.authentication_methods).
        """
        requested = set(request.GET.get("acr_values", "").split())
        known = requested & {privacy.ACR_PASSWORD, privacy.ACR_SECOND_FACTOR}
        if not known or privacy.ACR_PASSWORD in known:
            return True
        methods = privacy.authentication_methods(request.session, request.user)
        return privacy.acr_of(methods) == privacy.ACR_SECOND_FACTOR

    def redirect(self, redirect_to, application):
        # RFC 9207 §2: "iss" on every authorization response, errors too (the toolkit adds it to
        # successful ones only); openid-client rejects an error response without it.
        if "iss" not in parse_qs(urlsplit(redirect_to).query):
            issuer = oauth2_settings.oauth2_authorization_server_issuer(self.request)
            redirect_to = _add_query(redirect_to, {"iss": issuer})
        return super().redirect(redirect_to, application)

    def _registered_redirect(self, request):
        """(client, redirect_uri) when both are registered, else None: no open redirector."""
        client = get_application_model().objects.filter(client_id=self._client_id(request)).first()
        if client is None:
            return None
        uri = request.GET.get("redirect_uri", "")
        if not uri:
            uris = client.redirect_uris.split()
            uri = uris[0] if len(uris) == 1 else ""
        if not uri or not client.redirect_uri_allowed(uri):
            return None
        return client, uri

    def _error_to_client(self, request, error, description="", unsafe=None):
        """OIDC Core §3.1.2.6: the error goes back to the client, with state and iss."""
        target = self._registered_redirect(request)
        if target is None:
            if unsafe is not None:
                return unsafe
            return render(
                request, "oauth2_provider/authorize.html", {"error": {"error": error}}, status=400
            )
        client, uri = target
        params = {"error": error}
        if description:
            params["error_description"] = description
        if request.GET.get("state"):
            params["state"] = request.GET["state"]
        return self.redirect(_add_query(uri, params), client)

    def dispatch(self, request, *args, **kwargs):
        if request.method == "POST":
            if _is_portal_form(request):
                # The consent form keeps Django's CSRF check (the view itself is exempt).
                return csrf_protect(self._dispatch)(request, *args, **kwargs)
            return _posted_request_as_get(request)  # OIDC Core §3.1.2.1
        return self._dispatch(request, *args, **kwargs)

    def _refusal(self, request):
        """Request parameters Portail does not support, refused as OIDC Core requires."""
        if "request" in request.GET:
            # OIDC Core §6.1: request objects are not supported.
            return self._error_to_client(request, "request_not_supported")
        if "request_uri" in request.GET:
            return self._error_to_client(request, "request_uri_not_supported")  # §6.2
        mode = request.GET.get("response_mode")
        if mode is not None and mode != "query":
            # Only the query response mode (the default of the code flow); form_post is not
            # implemented, and not advertised in discovery.
            return self._error_to_client(
                request, "invalid_request", "response_mode: only query is supported"
            )
        prompt = self._prompt(request)
        if "none" in prompt and len(set(prompt)) > 1:
            # OIDC Core §3.1.2.1: "none" with any other value is an error.
            return self._error_to_client(
                request, "invalid_request", "prompt=none cannot be combined with other values"
            )
        if "none" in prompt and (
            not request.user.is_authenticated or self._max_age_exceeded(request)
        ):
            # OIDC Core §3.1.2.6: silent authentication impossible without a (recent) login.
            return self._error_to_client(request, "login_required")
        return None

    def _dispatch(self, request, *args, **kwargs):
        self.request = request
        self.portail_app = None
        if request.method == "GET":
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
        silent = "none" in self._prompt(request)
        self.fresh = (
            request.method == "GET" and not silent and self._wants_fresh_credentials(request)
        )
        if self.fresh and not services.credentials_just_typed(request):
            # The same mechanism as CAS renew=true: the password must be typed after this point.
            services.ask_for_credentials(request)
            return redirect_to_login(request.get_full_path())
        if self.fresh:
            # Typed just now: the toolkit must not send the user to the login page once more.
            query = request.GET.copy()
            prompt = [p for p in query.get("prompt", "").split() if p != "login"]
            if prompt:
                query["prompt"] = " ".join(prompt)
            else:
                query.pop("prompt", None)
            request.GET = query
        if request.user.is_authenticated:
            self.portail_app = (
                Application.objects.filter(oidc_client__client_id=self._client_id(request))
                .prefetch_related("structures")
                .first()
            )
            if self.portail_app is not None and not self.portail_app.is_available_to(request.user):
                page = _refused(request, services.ApplicationNotAvailable())
                if request.method != "GET":
                    return page
                # OIDC Core §3.1.2.6 (RFC 6749 §4.1.2.1): the application learns the refusal;
                # the French page only when the request names no registered redirect.
                return self._error_to_client(
                    request, "access_denied", "profile not allowed for this application", page
                )
            if request.method == "GET" and not self._acr_reached(request):
                # OIDC Core §5.5.1.1: a level that cannot be met is a failed authentication.
                # The portal's second factor is the console's TOTP: passed in this session, the
                # session is « mfa »; the portal never asks it of anyone else.
                return self._error_to_client(
                    request,
                    "access_denied",
                    f"acr_values: {privacy.ACR_SECOND_FACTOR} requires the second factor, "
                    "not used in this sign-in",
                )
        return super().dispatch(request, *args, **kwargs)

    def _issued(self, request, response):
        if response.status_code == 302 and "code=" in response.get("Location", ""):
            client_id = self._client_id(request)
            request.session.pop(services.CREDENTIALS_ASKED_KEY, None)  # spent on this code
            oidc_logout.remember_client(request.session, client_id)
            name = self.portail_app.name if self.portail_app else client_id
            record("sso.oidc.authorize", request=request, target=request.user, application=name)
            if "none" in self._prompt(request):
                return response  # silent: never a page, only the redirect
            if urlsplit(response["Location"]).scheme not in ("http", "https"):
                # A native app's private-use scheme (RFC 8252 §7.1): the toolkit's redirect,
                # which allows the registered schemes (Django's redirect() would refuse it).
                return response
            return _to_application(request, response["Location"], name)
        if (
            request.method == "GET"
            and response.status_code == 200
            and "none" in self._prompt(request)
        ):
            # The consent screen would be shown: OIDC Core §3.1.2.6 consent_required.
            return self._error_to_client(request, "consent_required")
        return response

    def _with_auth_time(self, handler, request, *args, **kwargs):
        mark = oidc.session_auth_time.set(request.session.get(services.AUTH_TIME_KEY))
        silent = oidc.silent_login_possible.set(
            request.user.is_authenticated and not self._max_age_exceeded(request)
        )
        user = oidc.session_user.set(request.user if request.user.is_authenticated else None)
        authenticated = request.user.is_authenticated
        sid = oidc.session_sid.set(privacy.session_id(request.session) if authenticated else "")
        amr = oidc.session_amr.set(
            privacy.authentication_methods(request.session, request.user) if authenticated else None
        )
        try:
            return self._issued(request, handler(request, *args, **kwargs))
        finally:
            oidc.session_amr.reset(amr)
            oidc.session_sid.reset(sid)
            oidc.session_user.reset(user)
            oidc.silent_login_possible.reset(silent)
            oidc.session_auth_time.reset(mark)

    def get(self, request, *args, **kwargs):
        return self._with_auth_time(super().get, request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        return self._with_auth_time(super().post, request, *args, **kwargs)


class PortailDiscoveryView(ConnectDiscoveryInfoView):
    """The toolkit's discovery document, plus what Portail adds: back-channel logout."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        data = json.loads(response.content)
        # Only what Portail does: RS256 ID tokens (OIDCClientForm), code and refresh grants.
        data["id_token_signing_alg_values_supported"] = ["RS256"]
        data["grant_types_supported"] = [
            "authorization_code",
            "refresh_token",
            "client_credentials",
        ]
        data["backchannel_logout_supported"] = True
        # Back-Channel Logout §2.1: logout tokens carry sid, ID tokens too.
        data["backchannel_logout_session_supported"] = True
        # OIDC Core §8.1: each application (or sector) sees its own identifier of a user.
        data["subject_types_supported"] = ["pairwise"]
        data["acr_values_supported"] = [privacy.ACR_PASSWORD, privacy.ACR_SECOND_FACTOR]

        # RFC 8414 §2 (RFC 7009, RFC 7662): where clients revoke and introspect tokens.
        data["revocation_endpoint"] = self._get_endpoint_url(request, "revoke-token", True)
        data["introspection_endpoint"] = self._get_endpoint_url(request, "introspect", True)
        authenticated = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
        signing = list(client_assertions.ALGORITHMS)
        data["token_endpoint_auth_signing_alg_values_supported"] = signing
        data["introspection_endpoint_auth_signing_alg_values_supported"] = signing
        data["revocation_endpoint_auth_signing_alg_values_supported"] = signing
        data["revocation_endpoint_auth_methods_supported"] = [*authenticated, "none"]
        # RFC 7662 §2.1: introspection needs the client's own credentials (PortailIntrospectView).
        data["introspection_endpoint_auth_methods_supported"] = authenticated
        # Only the query response mode (no form_post, see PortailAuthorizationView._refusal);
        # request objects are refused (OIDC Discovery §3 defaults, said explicitly).
        data["response_modes_supported"] = ["query"]
        data["request_parameter_supported"] = False
        data["request_uri_parameter_supported"] = False
        response.content = json.dumps(data)
        return response


def root_discovery(request):
    """/.well-known/openid-configuration: the issuer is BASE_URL/o, whose document lives at
    /o/.well-known/openid-configuration (OIDC Discovery §4: issuer + this path). Sending clients
    there keeps one issuer everywhere; serving the same document here would break §4.3 (the
    issuer must be the prefix the document was fetched from)."""
    response = HttpResponseRedirect(reverse("oauth2_provider:oidc-connect-discovery-info"))
    response["Access-Control-Allow-Origin"] = "*"
    return response


class PortailJwksView(JwksInfoView):
    """The JWKS, cacheable: the toolkit's public max-age, without the portal's no-store."""

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response.portail_cacheable = True  # NoStoreMiddleware leaves its Cache-Control alone
        return response


@method_decorator(csrf_exempt, name="dispatch")
class PortailLogoutView(RPInitiatedLogoutView):
    """RP-initiated logout (RP-Initiated Logout 1.0 §2), which the client may also POST.

    The request ends the application's grant, never the portal session by itself: a valid,
    recent id_token_hint (signed by the portal, our issuer, a registered client as audience,
    at most PORTAIL_OIDC_LOGOUT_HINT_GRACE_SECONDS past its expiry) revokes that client's codes
    and tokens of the portal session named by its sid. ID tokens end up in logs and URLs: an
    anonymous request with one must not log anybody out of every application. A user with a
    portal session then chooses « Se déconnecter de l'ENT » (the full logout, CAS single logout
    and back-channels included) or « Rester connecté »; both go back to the application's
    registered post_logout_redirect_uri. The portal's own logout (/auth/logout) stays one click.

    Only the relying party's request is exempt from CSRF; the portal's confirmation form keeps
    Django's check.
    """

    def dispatch(self, request, *args, **kwargs):
        if request.method == "POST":
            if _is_portal_form(request):
                return csrf_protect(super().dispatch)(request, *args, **kwargs)
            return _posted_request_as_get(request)
        return super().dispatch(request, *args, **kwargs)

    def _checked(self, params):
        """(client, hint claims or None, fresh) of a logout request; raises OIDCError."""
        from oauth2_provider.exceptions import ClientIdMissmatch, InvalidIDTokenError

        hint, client_id = params.get("id_token_hint"), params.get("client_id")
        claims, client = None, None
        if hint:
            claims = oidc.id_token_hint_claims(hint)
            client = _hint_client(claims) if claims is not None else None
            if client is None:
                raise InvalidIDTokenError()
            if client_id and client.client_id != client_id:
                raise ClientIdMissmatch()
        elif client_id:
            client = get_application_model().objects.filter(client_id=client_id).first()
        self.validate_post_logout_redirect_uri(client, params.get("post_logout_redirect_uri"))
        return client, claims, claims is not None and _hint_is_fresh(claims)

    def _back_to_application(self, params):
        from oauth2_provider.http import OAuth2ResponseRedirect

        uri = params.get("post_logout_redirect_uri")
        if not uri:
            return render(self.request, "sso/logged_out.html")
        if params.get("state"):
            uri = _add_query(uri, {"state": params["state"]})
        return OAuth2ResponseRedirect(uri, oauth2_settings.ALLOWED_REDIRECT_URI_SCHEMES)

    def _end_application_grant(self, client, claims):
        """The hinted session's grant at this client (its sid), or, for a hint without sid,
        the hinted user's (the ID token row names the user)."""
        from oauth2_provider.models import IDToken

        sid = claims.get("sid") or ""
        user = None
        if not sid:
            row = IDToken.objects.filter(jti=str(claims.get("jti", "")), application=client)
            user = getattr(row.select_related("user").first(), "user", None)
        if sid or user is not None:
            oidc_logout.revoke_grant(client, user, sid)
            record(
                "sso.oidc.logout_hint",
                request=self.request,
                target=user,
                application=client.name or client.client_id,
            )

    def get(self, request, *args, **kwargs):
        params = request.GET
        try:
            client, claims, fresh = self._checked(params)
        except OIDCError as error:
            return self.error_response(error)
        if fresh:
            self._end_application_grant(client, claims)
        if not request.user.is_authenticated:
            return self._back_to_application(params)
        self.oidc_data = {
            key: params.get(key)
            for key in ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")
        }
        context = {"form": self.get_form(self.get_form_class())}
        if client is not None:
            app = getattr(client, "portail_application", None)
            context["application"] = app or client
        return self.render_to_response(self.get_context_data(**context))

    def form_valid(self, form):
        params = form.cleaned_data
        try:
            self._checked(params)
        except OIDCError as error:
            return self.error_response(error)
        if params.get("allow"):
            # The full logout: CAS single logout and OIDC back-channels through its signal.
            account_services.log_out(self.request)
        return self._back_to_application(params)


# OIDC Core §5.3.1 and RFC 6750 §2.2: userinfo by GET or POST, the token in the Authorization
# header or the form body. No cookie is read there, so there is nothing for CSRF to protect (the
# toolkit's view is exempt too; this subclass's own dispatch must say it again).
@method_decorator(csrf_exempt, name="dispatch")
class PortailUserInfoView(UserInfoView):
    """userinfo, refusing an access token in the URL (RFC 9700 §4.3.2, RFC 6750 §2.3).

    The toolkit's COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT gate covers its protected
    resources but not this endpoint; the token would otherwise land in proxy and server logs.
    """

    def dispatch(self, request, *args, **kwargs):
        if "access_token" in request.GET:
            response = HttpResponse(status=401)
            response["WWW-Authenticate"] = (
                'Bearer error="invalid_request", '
                'error_description="access_token must be sent in the Authorization header"'
            )
            return response
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        return self._userinfo(request) or super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        return self._userinfo(request) or super().post(request, *args, **kwargs)

    @staticmethod
    def _userinfo(request):
        """The answer to a valid token in the Authorization header, or None: the toolkit answers.

        oauthlib's pipeline builds its request from a copy of the whole WSGI environ (every
        header and variable converted to text) before the one check that matters here, ~0.3 ms
        of the ~1 ms a userinfo took (issue 9 §6, bench/README.md). Here its request holds the
        Authorization header only, and the same calls as its UserInfoEndpoint follow: the
        validator's validate_bearer_token (the token's row, expiry, the « openid » scope — OIDC
        Core §5.3 —, the client still usable, RFC 8707 audience) and get_userinfo_claims (claims
        by granted scope and the application's release list). Anything else — no or malformed
        header, a token in the body, an invalid token, a claims set without « sub » — goes
        through the toolkit, which gives its RFC 6750 §3 error answer.
        """
        header = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(header) != 2 or header[0].lower() != "bearer":
            return None
        core = OAuthlibRequest(
            OAuthLibCore._get_escaped_full_path(None, request),  # the toolkit's URI (no self)
            http_method=request.method,
            headers={"Authorization": request.META["HTTP_AUTHORIZATION"]},
        )
        core.scopes = ["openid"]
        validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
        if not validator.validate_bearer_token(header[1], core.scopes, core):
            return None
        if "openid" not in core.scopes:
            return None  # insufficient_scope, answered by the toolkit
        claims = validator.get_userinfo_claims(core)
        if not isinstance(claims, dict) or "sub" not in claims:
            return None
        return HttpResponse(json.dumps(claims), content_type="application/json")


# --- Token endpoint, introspection, logout by id_token_hint (issue 9, points 3 and 4) ----------


def _client_address(request):
    return getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR")


def _basic_client_id(request) -> str:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return ""
    try:
        decoded = base64.b64decode(header[6:]).decode()
    except (ValueError, UnicodeDecodeError):
        return ""
    return unquote_plus(decoded.split(":", 1)[0])


def _token_client_limits(request) -> dict:
    address = _client_address(request)
    client_id = (_basic_client_id(request) or request.POST.get("client_id", ""))[:200]
    # A client's budget is counted per address: a flood of bogus credentials from elsewhere
    # cannot lock the application's own server out of the token endpoint.
    return {"token:address": address, "token:client": f"{client_id}|{address}" if client_id else ""}


def _too_many(exc):
    response = JsonResponse(
        {
            "error": "invalid_request",
            "error_description": "Too many failed client authentications; retry later.",
        },
        status=429,
    )
    response["Retry-After"] = str(exc.retry_after)
    return response


def _guarded_by_client_limits(handler):
    """Refuse a client or an address that failed client authentication too often (429), and
    count each failure (401). Successes count nothing: a busy application is never limited."""

    def wrapped(request, *args, **kwargs):
        limits = _token_client_limits(request)
        try:
            ratelimit.guard(limits)
        except ratelimit.RateLimited as exc:
            return _too_many(exc)
        response = handler(request, *args, **kwargs)
        if response.status_code == 401:
            for rule, value in limits.items():
                ratelimit.add(rule, value)
        return response

    return wrapped


class PortailTokenView(TokenView):
    """The toolkit's token endpoint behind per-client and per-address limits of failures."""

    def post(self, request, *args, **kwargs):
        return _guarded_by_client_limits(self._answer)(request, *args, **kwargs)

    @method_decorator(sensitive_post_parameters("client_secret", "code_verifier", "refresh_token"))
    def _answer(self, request, *args, **kwargs):
        # A valid code exchange or refresh in a few statements (token_endpoint.py); anything
        # else, errors included, through the toolkit and oauthlib as before.
        response = token_endpoint.answer(request)
        if response is None:
            response = super().post(request, *args, **kwargs)
        return response

    @method_decorator(sensitive_post_parameters("password", "client_secret"))
    def authorization_flow_token_response(self, request, *args, **kwargs):
        if app_authorized.has_listeners():
            return super().authorization_flow_token_response(request, *args, **kwargs)
        # The toolkit reads the new access token back from the database only to send
        # app_authorized, which nothing here listens to: one statement less per token request.
        url, headers, body, status = self.create_token_response(request)
        response = HttpResponse(content=body, status=status)
        for name, value in headers.items():
            response[name] = value
        return response


def authenticate_client(request):
    """The confidential client whose credentials (Basic or form body) the request carries."""
    core = get_oauthlib_core()
    uri, method, body, headers = core._extract_params(request)
    oauth_request = OAuthlibRequest(uri, method, body, headers)
    validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
    if not validator.authenticate_client(oauth_request):
        return None
    client = oauth_request.client
    if client is None or client.client_type != client.CLIENT_CONFIDENTIAL:
        return None
    return client


@method_decorator(csrf_exempt, name="dispatch")  # server to server, no cookie is read
class PortailIntrospectView(View):
    """RFC 7662 token introspection, for the token's own client only.

    §2.1: the caller authenticates as a client (a public client cannot: 401). §4: a client
    learns nothing of another client's tokens (active false, as for an unknown token), and
    the user is named by the pairwise sub of that client, the ENT identifier only where the
    administrator releases it.
    """

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        return _guarded_by_client_limits(self._introspect)(request)

    def _introspect(self, request):
        client = authenticate_client(request)
        if client is None:
            response = JsonResponse({"error": "invalid_client"}, status=401)
            response["WWW-Authenticate"] = 'Basic realm="introspection"'
            return response
        value = request.POST.get("token")
        if not value:
            return JsonResponse({"error": "invalid_request"}, status=400)
        checksum = hashlib.sha256(value.encode()).hexdigest()
        token = (
            get_access_token_model()
            .objects.select_related("user", "application")
            .filter(token_checksum=checksum, application=client)
            .first()
        )
        if token is None or not token.is_valid():
            return JsonResponse({"active": False})
        data = {
            "active": True,
            "scope": token.scope,
            "client_id": client.client_id,
            "token_type": "Bearer",
            "exp": int(token.expires.timestamp()),
            "iss": oauth2_settings.OIDC_ISS_ENDPOINT,
        }
        if token.user is not None:
            data["sub"] = privacy.subject_for_client(token.user.pk, client)
            app = getattr(client, "portail_application", None)
            if app is not None and "identifier" in (app.released_attributes or []):
                data["username"] = token.user.identifier
        return JsonResponse(data)


def _hint_is_fresh(claims) -> bool:
    """A bounded age (settings.PORTAIL_OIDC_LOGOUT_HINT_GRACE_SECONDS past its expiry)."""
    try:
        expires = float(claims["exp"])
    except (KeyError, TypeError, ValueError):
        return False
    return time.time() <= expires + settings.PORTAIL_OIDC_LOGOUT_HINT_GRACE_SECONDS


def _hint_client(claims):
    audience = claims.get("aud")
    if isinstance(audience, list):
        audience = audience[0] if len(audience) == 1 else None
    if not isinstance(audience, str):
        return None
    return get_application_model().objects.filter(client_id=audience).first()
