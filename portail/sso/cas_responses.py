"""The CAS validation answers: XML per CAS 3.0 Appendix A (namespace http://www.yale.edu/tp/cas),
or JSON when the client asks format=JSON (CAS 3.0 §2.5.1), and the plain 1.0 answer."""

import json
import time
from xml.sax.saxutils import escape

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
