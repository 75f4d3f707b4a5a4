"""SAML operations of the portal as identity provider: requests read, assertions issued, logout.

Views stay thin: they call these functions, which check the provider, build the messages with
pysaml2 (saml.py) and write the audit trail.
"""

import base64
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAMEID_FORMAT_TRANSIENT, NameID

from portail.audit.services import record
from portail.federation.messages import MessageTooLarge, check_size
from portail.sso.privacy import pairwise_subject

from . import saml
from .models import (
    NAMEID_PERSISTENT,
    NAMEID_TRANSIENT,
    PersonIdentifier,
    SamlSession,
    ServiceProvider,
)

# SAML Bindings §3.4.3 says 80 bytes; providers send longer ones (URLs): kept in the session,
# so bounded all the same.
RELAY_STATE_MAX = 1024
PENDING_SESSION_KEY = "saml_pending"  # {key: request already checked, waiting for the login}

# Profils nationaux of the GAR (nomenclature of the ENT annuaire, ENTPersonProfils).
NATIONAL_PROFILES = {
    "eleve": "National_elv",
    "parent": "National_tut",
    "enseignant": "National_ens",
    # Staff of a school with no teaching function here: the GAR's « personnel d'établissement ».
    "personnel": "National_eta",
}


class SamlRefusal(Exception):
    """A request the portal will not answer with an assertion: a French page, never a 500."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


# --- Provider registry -------------------------------------------------------------------------


def provider_by_entity_id(entity_id: str) -> ServiceProvider | None:
    return ServiceProvider.objects.filter(entity_id=entity_id, enabled=True).first()


def metadata_problem(xml: str) -> tuple[str | None, str]:
    """(entityID of the SP in `xml`, "") or (None, the French reason it cannot be used)."""
    from saml2.mdstore import MetadataStore

    from .saml import _config

    store = MetadataStore(None, _config([]))
    try:
        store.load("inline", xml)
    except Exception as exc:  # noqa: BLE001  (pysaml2 raises many kinds for bad XML)
        return None, f"Métadonnées illisibles : {str(exc)[:200]}"
    sps = [
        eid
        for eid in store.keys()  # noqa: SIM118  (a MetadataStore, not a dict)
        if store.service(eid, "spsso_descriptor", "assertion_consumer_service")
    ]
    if len(sps) != 1:
        return (
            None,
            "Les métadonnées doivent décrire exactement un fournisseur de services (SPSSODescriptor avec AssertionConsumerService).",
        )
    return sps[0], ""


def available_providers(user) -> list[ServiceProvider]:
    """The SAML tiles of the home page for this user."""
    from portail.sso.services import visible_to

    return visible_to(user, ServiceProvider.objects.filter(enabled=True, show_tile=True))


# --- GAR attributes ----------------------------------------------------------------------------


def gar_person_identifier(user) -> str:
    """GARPersonIdentifiant: created on first need, then never changed (a rename keeps it)."""
    ident, _ = PersonIdentifier.objects.get_or_create(user=user)
    return str(ident.value)


def gar_attributes(user, released) -> dict[str, list[str]]:
    released = set(released or [])
    values: dict[str, list[str]] = {}
    if "GARPersonIdentifiant" in released:
        values["GARPersonIdentifiant"] = [gar_person_identifier(user)]
    if "idEnt" in released and settings.PORTAIL_GAR_ID_ENT:
        values["idEnt"] = [settings.PORTAIL_GAR_ID_ENT]
    if "GARStructureUAI" in released:
        uais = list(user.structures.values_list("uai", flat=True))
        if uais:
            values["GARStructureUAI"] = uais
    if "GARPersonProfils" in released:
        values["GARPersonProfils"] = [NATIONAL_PROFILES.get(user.profile, "National_eta")]
    if "GARPersonNom" in released:
        values["GARPersonNom"] = [user.last_name]
    if "GARPersonPrenom" in released:
        values["GARPersonPrenom"] = [user.first_name]
    if "GARPersonNomAffichage" in released:
        values["GARPersonNomAffichage"] = [f"{user.first_name} {user.last_name}".strip()]
    if "GARPersonMail" in released and user.email:
        values["GARPersonMail"] = [user.email]
    return values


def name_id_for(sp: ServiceProvider, user, requested_format: str | None) -> NameID:
    """Persistent: pairwise per provider (or sector), as OIDC's sub; transient: fresh each time."""
    fmt = sp.name_id_format
    if requested_format in (NAMEID_PERSISTENT, NAMEID_TRANSIENT):
        fmt = requested_format
    if fmt == NAMEID_TRANSIENT:
        return NameID(format=NAMEID_FORMAT_TRANSIENT, text=secrets.token_urlsafe(24))
    sector = (
        ("sector:" + sp.pairwise_sector.strip().lower())
        if sp.pairwise_sector
        else f"saml:{sp.entity_id}"
    )
    return NameID(
        format=NAMEID_PERSISTENT,
        text=pairwise_subject(user.pk, sector),
        name_qualifier=saml.entity_id(),
        sp_name_qualifier=sp.entity_id,
    )


# --- Web Browser SSO ---------------------------------------------------------------------------


@dataclass
class PendingRequest:
    """An AuthnRequest already checked (provider known, signature, ACS): what the answer needs."""

    entity_id: str
    request_id: str | None
    acs_url: str
    relay_state: str = ""
    name_id_format: str | None = None
    force_authn: bool = False
    is_passive: bool = False

    def as_dict(self):
        return {
            "entity_id": self.entity_id,
            "request_id": self.request_id,
            "acs_url": self.acs_url,
            "relay_state": self.relay_state,
            "name_id_format": self.name_id_format,
            "force_authn": self.force_authn,
            "is_passive": self.is_passive,
        }


def _issuer_of(message: str, binding: str) -> str:
    """The Issuer of a request, read before anything is trusted (to choose its metadata)."""
    import defusedxml.ElementTree as DefusedET
    from saml2.entity import Entity
    from saml2.saml import NAMESPACE as SAML_NS

    try:
        check_size(message, binding)
    except MessageTooLarge as exc:
        raise SamlRefusal(
            "Le message SAML reçu est trop volumineux pour être lu.", status=413
        ) from exc
    try:
        root = DefusedET.fromstring(Entity.unravel(message, binding, "SAMLRequest"))
    except Exception as exc:  # noqa: BLE001  (base64, deflate, XML, entities refused)
        raise SamlRefusal("Le message SAML reçu est illisible.") from exc
    issuer = root.find(f"{{{SAML_NS}}}Issuer")
    return (issuer.text or "").strip() if issuer is not None else ""


def read_authn_request(request, binding: str) -> PendingRequest:
    """Check an AuthnRequest (HTTP-Redirect or HTTP-POST); a SamlRefusal says why it is refused."""
    params = request.GET if binding == BINDING_HTTP_REDIRECT else request.POST
    message = params.get("SAMLRequest", "")
    if not message:
        raise SamlRefusal("Aucune demande d'authentification SAML n'accompagne cette adresse.")
    relay_state = params.get("RelayState", "")
    if len(relay_state) > RELAY_STATE_MAX:
        raise SamlRefusal("La demande de cette ressource est trop longue (RelayState).")
    sigalg, signature = params.get("SigAlg"), params.get("Signature")
    entity = _issuer_of(message, binding)
    sp = provider_by_entity_id(entity)
    if sp is None:
        record("federation.saml.unknown_sp", request=request, subject=entity[:200])
        raise SamlRefusal(
            "Cette ressource n’est pas enregistrée auprès du portail. Signalez-le à votre référent ENT.",
            status=403,
        )
    if binding == BINDING_HTTP_REDIRECT and sigalg and sigalg.endswith("sha1"):
        raise SamlRefusal("La demande est signée avec un algorithme refusé (SHA-1).")
    wants_signed = sp.require_signed_requests or _metadata_wants_signed(sp)
    # HTTP-Redirect: pysaml2 checks the query signature only when told to; a signature that is
    # there is always checked.
    must = wants_signed or (binding == BINDING_HTTP_REDIRECT and bool(signature))
    server = saml.server([sp], want_signed_requests=must)
    try:
        parsed = server.parse_authn_request(
            message, binding, relay_state=relay_state, sigalg=sigalg, signature=signature
        )
    except Exception as exc:  # noqa: BLE001  (IncorrectlySigned, bad XML, expired…)
        record(
            "federation.saml.bad_request",
            request=request,
            provider=sp.name,
            reason=type(exc).__name__,
        )
        raise SamlRefusal(
            "La demande d’authentification de cette ressource est invalide (signature ou contenu). "
            "Réessayez depuis la ressource ; si cela se reproduit, signalez-le à votre référent ENT."
        ) from exc
    authn = parsed.message
    if wants_signed and binding == BINDING_HTTP_POST and authn.signature is None:
        raise SamlRefusal("Cette ressource doit signer ses demandes ; celle-ci ne l’est pas.")
    try:
        info = server.response_args(authn, [BINDING_HTTP_POST])
    except Exception as exc:  # noqa: BLE001  (UnknownPrincipal, UnsupportedBinding…)
        record("federation.saml.bad_acs", request=request, provider=sp.name)
        raise SamlRefusal(
            "L’adresse de retour demandée par cette ressource n’est pas celle de ses métadonnées."
        ) from exc
    acs = info["destination"]
    # A requested AssertionConsumerServiceURL must be one of the metadata's (pysaml2 otherwise
    # falls back on the default one): checked here again, whatever the version does.
    asked = authn.assertion_consumer_service_url
    if asked and asked not in _acs_urls(server, sp):
        record("federation.saml.bad_acs", request=request, provider=sp.name)
        raise SamlRefusal(
            "L’adresse de retour demandée par cette ressource n’est pas celle de ses métadonnées."
        )
    policy = authn.name_id_policy
    return PendingRequest(
        entity_id=sp.entity_id,
        request_id=authn.id,
        acs_url=acs,
        relay_state=relay_state,
        name_id_format=policy.format if policy is not None else None,
        force_authn=authn.force_authn in ("true", "1"),
        is_passive=authn.is_passive in ("true", "1"),
    )


def _endpoints(server, sp, kind: str, service: str, binding: str) -> list[dict]:
    """The provider's endpoints of one service and binding in its metadata (none: [])."""
    from saml2.s_utils import UnsupportedBinding

    try:
        return server.metadata.service(sp.entity_id, kind, service, binding) or []
    except UnsupportedBinding:
        return []


def _acs_urls(server, sp) -> set[str]:
    return {
        endpoint["location"]
        for binding in (BINDING_HTTP_POST, BINDING_HTTP_REDIRECT)
        for endpoint in _endpoints(
            server, sp, "spsso_descriptor", "assertion_consumer_service", binding
        )
    }


def _metadata_wants_signed(sp) -> bool:
    return (
        'AuthnRequestsSigned="true"' in sp.metadata_xml
        or "AuthnRequestsSigned='true'" in sp.metadata_xml
    )


def provider_name(pending: PendingRequest) -> str:
    sp = ServiceProvider.objects.filter(entity_id=pending.entity_id).first()
    return sp.name if sp is not None else pending.entity_id


def idp_initiated(sp: ServiceProvider) -> PendingRequest:
    server = saml.server([sp])
    acs = next(
        iter(server.metadata.assertion_consumer_service(sp.entity_id, BINDING_HTTP_POST)), None
    )
    if acs is None:
        raise SamlRefusal(
            "Cette ressource n’a pas d’adresse de retour HTTP-POST dans ses métadonnées."
        )
    return PendingRequest(
        entity_id=sp.entity_id, request_id=None, acs_url=acs["location"], relay_state=sp.relay_state
    )


@dataclass
class PostForm:
    """An HTTP-POST binding message, carried by the browser to `url`."""

    url: str
    field: str
    value: str
    relay_state: str = ""


def _post(xml: str, url: str, field_name: str, relay_state: str) -> PostForm:
    return PostForm(url, field_name, base64.b64encode(xml.encode()).decode(), relay_state)


def status_answer(request, pending: PendingRequest, status: str, text: str) -> PostForm:
    """A signed Response without assertion (RequestDenied, NoPassive) to the provider's ACS."""
    sp = ServiceProvider.objects.get(entity_id=pending.entity_id)
    response = saml.server([sp]).create_error_response(
        pending.request_id,
        pending.acs_url,
        (status, text),
        sign=True,
        sign_alg=saml.SIGN_ALG,
        digest_alg=saml.DIGEST_ALG,
    )
    return _post(str(response), pending.acs_url, "SAMLResponse", pending.relay_state)


def answer(request, pending: PendingRequest) -> PostForm:
    """The signed Response for the logged-in user: an assertion, or RequestDenied.

    Signed (xmlsec1, a child process) outside any transaction; the session row and the audit
    event are then written together.
    """
    user = request.user
    sp = ServiceProvider.objects.filter(entity_id=pending.entity_id).first()
    if sp is None or not sp.enabled:
        raise SamlRefusal("Cette ressource n’est plus enregistrée auprès du portail.", status=403)
    server = saml.server([sp])
    if not sp.is_available_to(user) or not user.is_active:
        record("federation.saml.denied", request=request, target=user, provider=sp.name)
        if pending.request_id is None:
            raise SamlRefusal(
                "Cette ressource n’est pas proposée à votre profil ou à votre établissement.",
                status=403,
            )
        return status_answer(
            request, pending, samlp.STATUS_REQUEST_DENIED, "Ressource non proposée à ce profil"
        )
    name_id = name_id_for(sp, user, pending.name_id_format)
    response = server.create_authn_response(
        gar_attributes(user, sp.released_attributes),
        pending.request_id,
        pending.acs_url,
        sp.entity_id,
        name_id=name_id,
        authn={"class_ref": AUTHN_PASSWORD_PROTECTED, "authn_auth": saml.entity_id()},
        sign_response=True,
        sign_assertion=True,
        encrypt_assertion=sp.encrypt_assertions,
        encrypt_assertion_self_contained=True,
        sign_alg=saml.SIGN_ALG,
        digest_alg=saml.DIGEST_ALG,
    )
    # pysaml2 draws the SessionIndex; its (per-request) session store has the assertion.
    assertion, _ = next(iter(server.session_db.assertion.values()))
    statements = assertion.authn_statement
    statement = statements[0] if isinstance(statements, list) else statements
    session_index = statement.session_index
    if not request.session.session_key:
        request.session.save()
    with transaction.atomic():
        # Sessions that ended without a logout (expiry): their rows go once no session can be left.
        SamlSession.objects.filter(
            created_at__lt=timezone.now() - timedelta(days=settings.PORTAIL_REMEMBER_ME_DAYS + 1)
        ).delete()
        SamlSession.objects.create(
            user=user,
            session_key=request.session.session_key or "",
            provider=sp,
            name_id=name_id.text,
            name_id_format=name_id.format,
            session_index=session_index,
        )
        record(
            "federation.saml.login",
            request=request,
            target=user,
            provider=sp.name,
            idp_initiated=pending.request_id is None,
        )
    return _post(str(response), pending.acs_url, "SAMLResponse", pending.relay_state)


# --- Single logout -----------------------------------------------------------------------------


def _slo_endpoint(server, sp) -> tuple[str, str] | None:
    """(binding, location) of the provider's SingleLogoutService, HTTP-Redirect first (the
    request travels in the frame's own URL)."""
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        endpoints = _endpoints(server, sp, "spsso_descriptor", "single_logout_service", binding)
        if endpoints:
            return binding, endpoints[0]["location"]
    return None


SLO_POST_SALT = "portail.federation.idp.slo-post"
SLO_POST_SECONDS = 120  # the logout page's frames load at once; a late one is refused


def front_channel_requests(session_key: str, user, *, except_provider=None) -> list[dict]:
    """The frames the browser loads to tell each provider of this portal session that it ended:
    {"url", "origins" (what the frame will show: the logout page's frame-src), "loads"}.

    HTTP-Redirect SingleLogoutService: the signed LogoutRequest itself. HTTP-POST only: a portal
    page (signed, short-lived token naming the session) that posts the signed LogoutRequest.
    The rows are deleted: each provider is told once.
    """
    from django.core import signing
    from django.urls import reverse

    if not session_key:
        return []
    rows = list(SamlSession.objects.filter(session_key=session_key).select_related("provider"))
    SamlSession.objects.filter(pk__in=[r.pk for r in rows]).delete()
    urls = []
    for row in rows:
        sp = row.provider
        if except_provider is not None and sp.pk == except_provider.pk:
            continue
        server = saml.server([sp])
        endpoint = _slo_endpoint(server, sp)
        if endpoint is None:
            continue
        if endpoint[0] == BINDING_HTTP_REDIRECT:
            url = _logout_request(server, sp, row, endpoint[1], BINDING_HTTP_REDIRECT)
            urls.append({"url": url, "origins": [origin(url)], "loads": 1})
        else:
            token = signing.dumps(
                [sp.pk, row.name_id, row.name_id_format, row.session_index], salt=SLO_POST_SALT
            )
            url = saml.base_url() + reverse("federation_idp:slo-post", args=[token])
            # The portal's page, then the provider's answer to its POST: two loads, two origins.
            urls.append({"url": url, "origins": [origin(url), origin(endpoint[1])], "loads": 2})
        record("federation.saml.logout_sent", target=user, provider=sp.name)
    return urls


def _logout_request(server, sp, row, destination: str, binding: str):
    """A signed LogoutRequest: the redirect URL (HTTP-Redirect) or the PostForm (HTTP-POST)."""
    name_id = NameID(format=row.name_id_format, text=row.name_id)
    if row.name_id_format == NAMEID_PERSISTENT:
        name_id.name_qualifier = saml.entity_id()
        name_id.sp_name_qualifier = sp.entity_id
    post = binding == BINDING_HTTP_POST
    _id, message = server.create_logout_request(
        destination,
        sp.entity_id,
        name_id=name_id,
        session_indexes=[row.session_index],
        sign=post,  # HTTP-POST: the XML signature; HTTP-Redirect: the query's
        sign_alg=saml.SIGN_ALG,
        digest_alg=saml.DIGEST_ALG,
        reason="urn:oasis:names:tc:SAML:2.0:logout:user",
    )
    if post:
        return _post(str(message), destination, "SAMLRequest", "")
    info = server.apply_binding(
        BINDING_HTTP_REDIRECT, str(message), destination, "", sign=True, sigalg=saml.SIGN_ALG
    )
    return dict(info["headers"])["Location"]


def posted_logout_request(token: str) -> tuple[ServiceProvider, "PostForm"]:
    """The HTTP-POST LogoutRequest a front-channel frame asks for (SamlRefusal if stale)."""
    from types import SimpleNamespace

    from django.core import signing

    try:
        pk, name_id, name_id_format, session_index = signing.loads(
            token, salt=SLO_POST_SALT, max_age=SLO_POST_SECONDS
        )
    except (signing.BadSignature, ValueError) as exc:
        raise SamlRefusal("Ce lien de déconnexion a expiré.") from exc
    sp = ServiceProvider.objects.filter(pk=pk).first()
    if sp is None:
        raise SamlRefusal("Cette ressource n’est plus enregistrée auprès du portail.", status=403)
    server = saml.server([sp])
    endpoint = _slo_endpoint(server, sp)
    if endpoint is None or endpoint[0] != BINDING_HTTP_POST:
        raise SamlRefusal("Cette ressource n’a plus d’adresse de déconnexion HTTP-POST.")
    row = SimpleNamespace(
        name_id=name_id, name_id_format=name_id_format, session_index=session_index
    )
    return sp, _logout_request(server, sp, row, endpoint[1], BINDING_HTTP_POST)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class LogoutAnswer:
    redirect: str | None = None
    form: PostForm | None = None


def handle_logout_request(request, binding: str):
    """SP-initiated single logout: end the portal session, answer the provider.

    The other providers of the session are told by the logout signal (signals.py), whose
    front-channel requests the page of the answer carries (middleware.py, views.py).
    """
    from portail.accounts import services as account_services

    params = request.GET if binding == BINDING_HTTP_REDIRECT else request.POST
    message = params["SAMLRequest"]
    relay_state = params.get("RelayState", "")
    entity = _issuer_of(message, binding)
    sp = provider_by_entity_id(entity)
    if sp is None:
        raise SamlRefusal("Cette ressource n’est pas enregistrée auprès du portail.", status=403)
    sigalg, signature = params.get("SigAlg"), params.get("Signature")
    if sigalg and sigalg.endswith("sha1"):
        raise SamlRefusal("La demande est signée avec un algorithme refusé (SHA-1).")
    # A logout request ends a session: it must be signed (SAML Profiles §4.4.3.1 recommends it;
    # here it is required, else any page could log a pupil out).
    server = saml.server([sp], want_signed_requests=True)
    try:
        parsed = server.parse_logout_request(
            message, binding, relay_state=relay_state, sigalg=sigalg, signature=signature
        )
    except Exception as exc:  # noqa: BLE001
        record(
            "federation.saml.bad_logout",
            request=request,
            provider=sp.name,
            reason=type(exc).__name__,
        )
        raise SamlRefusal("La demande de déconnexion de cette ressource est invalide.") from exc
    logout = parsed.message
    if binding == BINDING_HTTP_POST and logout.signature is None:
        raise SamlRefusal("La demande de déconnexion de cette ressource n’est pas signée.")
    user = request.user if request.user.is_authenticated else None
    name_id = logout.name_id.text if logout.name_id is not None else ""
    if (
        user is not None
        and SamlSession.objects.filter(
            session_key=request.session.session_key or "", provider=sp, name_id=name_id
        ).exists()
    ):
        SamlSession.objects.filter(session_key=request.session.session_key, provider=sp).delete()
        record("federation.saml.logout", request=request, target=user, provider=sp.name)
        account_services.log_out(request)  # CAS single logout, OIDC back-channels: its signal
    # Otherwise not this session's subject (already ended, another browser): nothing to end
    # here, and the answer is Success all the same (the subject has no session here).
    endpoint = _slo_endpoint(server, sp)
    if endpoint is None:
        return LogoutAnswer()
    response_binding, _ = endpoint
    response = server.create_logout_response(
        logout,
        [response_binding],
        sign=response_binding == BINDING_HTTP_POST,
        sign_alg=saml.SIGN_ALG,
        digest_alg=saml.DIGEST_ALG,
    )
    destination = response.destination
    if response_binding == BINDING_HTTP_REDIRECT:
        info = server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(response),
            destination,
            relay_state,
            response=True,
            sign=True,
            sigalg=saml.SIGN_ALG,
        )
        return LogoutAnswer(redirect=dict(info["headers"])["Location"])
    return LogoutAnswer(form=_post(str(response), destination, "SAMLResponse", relay_state))


# --- Metadata of a provider, fetched by URL ----------------------------------------------------

METADATA_MAX_BYTES = 1024 * 1024


def fetch_metadata(url: str) -> str:
    """GET a provider's metadata through the outbound guard (OWASP ASVS 5.0 V15.3, CWE-918)."""
    import urllib.error

    from portail.sso.outbound import opener

    if urlsplit(url).scheme not in ("http", "https"):
        raise SamlRefusal("L'adresse doit commencer par https://.")
    try:
        with opener().open(url, timeout=settings.PORTAIL_CAS_CALLBACK_TIMEOUT * 3) as answer:
            body = answer.read(METADATA_MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise SamlRefusal(f"L’adresse a répondu {exc.code}.") from exc
    except OSError as exc:  # RefusedDestination, DNS, connection, timeout
        raise SamlRefusal(
            "Impossible de lire les métadonnées à cette adresse (adresse interne refusée, ou "
            "serveur injoignable)."
        ) from exc
    if len(body) > METADATA_MAX_BYTES:
        raise SamlRefusal("Métadonnées trop volumineuses (1 Mo au plus).")
    return body.decode("utf-8", errors="replace")
