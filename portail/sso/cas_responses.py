"""The CAS validation answers: XML per CAS 3.0 Appendix A (namespace http://www.yale.edu/tp/cas),
or JSON when the client asks format=JSON (CAS 3.0 §2.5.1), and the plain 1.0 answer."""

import json
import secrets
import time
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from django.http import HttpResponse

from .services import AUTHENTICATION_DATE, cas_datetime

CAS_NS = "http://www.yale.edu/tp/cas"


def _xml(body: str) -> HttpResponse:
    return HttpResponse(
        f'<cas:serviceResponse xmlns:cas="{CAS_NS}">{body}</cas:serviceResponse>\n',
        content_type="application/xml; charset=utf-8",
    )


def _json(body: dict) -> HttpResponse:
    return HttpResponse(
        json.dumps({"serviceResponse": body}, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )


def _with_authentication(result) -> dict:
    """The user's attributes after the three that CAS 3.0 Appendix A (schema 3.0.3) requires
    first, in this order, in cas:attributes: authenticationDate,
    longTermAuthenticationRequestTokenUsed (§4.1.3), isFromNewLogin."""
    released = dict(result.attributes)
    # A ticket issued before authenticationDate was kept: the validation time stands in.
    when = released.pop(AUTHENTICATION_DATE, None) or cas_datetime(time.time())
    return {
        AUTHENTICATION_DATE: when,
        "longTermAuthenticationRequestTokenUsed": "true" if result.remembered else "false",
        "isFromNewLogin": "true" if result.from_new_login else "false",
        **released,
    }


def authentication_success(result, *, as_json: bool, with_attributes: bool = True):
    attributes = _with_authentication(result) if with_attributes else {}
    if as_json:
        success = {"user": result.identifier}
        if attributes:
            success["attributes"] = {
                k: v if isinstance(v, list) else [v] for k, v in attributes.items()
            }
        if result.pgt_iou:
            success["proxyGrantingTicket"] = result.pgt_iou
        if result.proxies:
            success["proxies"] = result.proxies
        return _json({"authenticationSuccess": success})
    parts = [f"<cas:user>{escape(result.identifier)}</cas:user>"]
    if attributes:
        parts.append("<cas:attributes>")
        for name, value in attributes.items():
            for item in value if isinstance(value, list) else [value]:
                parts.append(f"<cas:{name}>{escape(str(item))}</cas:{name}>")
        parts.append("</cas:attributes>")
    if result.pgt_iou:
        parts.append(f"<cas:proxyGrantingTicket>{escape(result.pgt_iou)}</cas:proxyGrantingTicket>")
    if result.proxies:
        parts.append("<cas:proxies>")
        parts.extend(f"<cas:proxy>{escape(p)}</cas:proxy>" for p in result.proxies)
        parts.append("</cas:proxies>")
    return _xml("<cas:authenticationSuccess>" + "".join(parts) + "</cas:authenticationSuccess>")


def authentication_failure(error, *, as_json: bool):
    if as_json:
        return _json(
            {"authenticationFailure": {"code": error.code, "description": error.description}}
        )
    return _xml(
        f'<cas:authenticationFailure code="{error.code}">'
        f"{escape(error.description)}</cas:authenticationFailure>"
    )


def proxy_success(ticket: str, *, as_json: bool):
    if as_json:
        return _json({"proxySuccess": {"proxyTicket": ticket}})
    return _xml(
        f"<cas:proxySuccess><cas:proxyTicket>{escape(ticket)}</cas:proxyTicket></cas:proxySuccess>"
    )


def proxy_failure(error, *, as_json: bool):
    if as_json:
        return _json({"proxyFailure": {"code": error.code, "description": error.description}})
    return _xml(
        f'<cas:proxyFailure code="{error.code}">{escape(error.description)}</cas:proxyFailure>'
    )


def validate_v1(result) -> HttpResponse:
    body = f"yes\n{result.identifier}\n" if result else "no\n\n"
    return HttpResponse(body, content_type="text/plain; charset=utf-8")


# --- /samlValidate (CAS 3.0 §4.2: SAML 1.1 in a SOAP envelope) ---------------------------------

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SAML1P_NS = "urn:oasis:names:tc:SAML:1.0:protocol"
SAML1_NS = "urn:oasis:names:tc:SAML:1.0:assertion"
CAS_ATTRIBUTE_NS = "http://www.ja-sig.org/products/cas/"  # CAS 3.0 §4.2.5's example
SAML_VALIDITY_SECONDS = 30  # the assertion is read at once by the application's back end


def _saml_instant(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _soap(response_attributes: str, body: str) -> HttpResponse:
    return HttpResponse(
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_NS}"><SOAP-ENV:Header/><SOAP-ENV:Body>'
        f'<samlp:Response xmlns:samlp="{SAML1P_NS}" xmlns:saml="{SAML1_NS}" '
        f'MajorVersion="1" MinorVersion="1" ResponseID="_{secrets.token_hex(16)}" '
        f'IssueInstant="{_saml_instant(time.time())}"{response_attributes}>'
        f"{body}</samlp:Response></SOAP-ENV:Body></SOAP-ENV:Envelope>\n",
        content_type="text/xml; charset=utf-8",
    )


def saml_failure(status: str, message: str) -> HttpResponse:
    """status: samlp:Requester (the request is unusable) or samlp:Responder (the ticket)."""
    return _soap(
        "",
        f'<samlp:Status><samlp:StatusCode Value="{status}"/>'
        f"<samlp:StatusMessage>{escape(message)}</samlp:StatusMessage></samlp:Status>",
    )


def saml_success(result, service: str, issuer: str) -> HttpResponse:
    attributes = _with_authentication(result)
    authenticated = attributes.pop(AUTHENTICATION_DATE)
    now = time.time()
    subject = (
        f"<saml:Subject><saml:NameIdentifier>{escape(result.identifier)}</saml:NameIdentifier>"
        "<saml:SubjectConfirmation><saml:ConfirmationMethod>"
        "urn:oasis:names:tc:SAML:1.0:cm:artifact"
        "</saml:ConfirmationMethod></saml:SubjectConfirmation></saml:Subject>"
    )
    statements = []
    for name, value in attributes.items():
        values = "".join(
            f"<saml:AttributeValue>{escape(str(item))}</saml:AttributeValue>"
            for item in (value if isinstance(value, list) else [value])
        )
        if values:
            statements.append(
                f'<saml:Attribute AttributeName="{escape(name)}" '
                f'AttributeNamespace="{CAS_ATTRIBUTE_NS}">{values}</saml:Attribute>'
            )
    attribute_statement = (
        f"<saml:AttributeStatement>{subject}{''.join(statements)}</saml:AttributeStatement>"
        if statements
        else ""
    )
    instant = authenticated.replace("Z", ".000Z") if authenticated.endswith("Z") else authenticated
    quoted_service = quoteattr(service)
    assertion = (
        f'<saml:Assertion AssertionID="_{secrets.token_hex(16)}" '
        f'IssueInstant="{_saml_instant(now)}" Issuer={quoteattr(issuer)} '
        'MajorVersion="1" MinorVersion="1">'
        f'<saml:Conditions NotBefore="{_saml_instant(now)}" '
        f'NotOnOrAfter="{_saml_instant(now + SAML_VALIDITY_SECONDS)}">'
        "<saml:AudienceRestrictionCondition>"
        f"<saml:Audience>{escape(service)}</saml:Audience>"
        "</saml:AudienceRestrictionCondition></saml:Conditions>"
        f"{attribute_statement}"
        f'<saml:AuthenticationStatement AuthenticationInstant="{instant}" '
        'AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:password">'
        f"{subject}</saml:AuthenticationStatement>"
        "</saml:Assertion>"
    )
    return _soap(
        f" Recipient={quoted_service}",
        f'<samlp:Status><samlp:StatusCode Value="samlp:Success"/></samlp:Status>{assertion}',
    )
