"""Outbound calls of the federation (IdP metadata, OIDC discovery, JWKS, token endpoint).

Through portail.sso.outbound's guard: every connection checks the very address it connects to
(no private, link-local or reserved destination: OWASP ASVS 5.0 V15.3, CWE-918), no redirect
followed, no proxy from the environment. Loopback only with PORTAIL_FEDERATION_ALLOW_LOOPBACK
(tests), not with DEBUG: a provider is never on this host in development either.
"""

import http.client
import ipaddress
import json
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

from django.conf import settings

from portail.sso import outbound

TIMEOUT_SECONDS = 5
MAX_BYTES = 2 * 1024 * 1024  # metadata of a federation can be large; more is not an answer


class FetchError(Exception):
    pass


def _allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return settings.PORTAIL_FEDERATION_ALLOW_LOOPBACK
    return outbound.address_allowed(address)


def fetch(url: str, *, form: dict | None = None, headers: dict | None = None) -> bytes:
    """The body of a 200 answer to GET (or POST `form`) `url`; FetchError otherwise."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"{url}: only http and https")
    data = urlencode(form).encode() if form is not None else None
    all_headers = {"Accept": "application/json, application/xml;q=0.9"}
    if data is not None:
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, headers=all_headers)  # noqa: S310
    try:
        with outbound.opener(_allowed).open(request, timeout=TIMEOUT_SECONDS) as answer:
            body = answer.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        raise FetchError(f"{url}: {exc}") from None
    if len(body) > MAX_BYTES:
        raise FetchError(f"{url}: answer too large")
    return body


def fetch_json(url: str, **kwargs) -> dict:
    try:
        value = json.loads(fetch(url, **kwargs))
    except ValueError:
        raise FetchError(f"{url}: not JSON") from None
    if not isinstance(value, dict):
        raise FetchError(f"{url}: not a JSON object")
    return value
