"""Outbound calls of the federation (IdP metadata, OIDC discovery, JWKS, token endpoint).

Through portail.sso.outbound's guard: every connection checks the very address it connects to
(no private, link-local or reserved destination: OWASP ASVS 5.0 V15.3, CWE-918), no redirect
followed, no proxy from the environment. Loopback only with PORTAIL_FEDERATION_ALLOW_LOOPBACK
(tests), not with DEBUG: a provider is never on this host in development either.
"""

import http.client
import ipaddress
import json
import socket
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


def _connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
    host, port = address
    last_error = outbound.RefusedDestination(f"{host}: no allowed address")
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        if not _allowed(sockaddr[0]):
            last_error = outbound.RefusedDestination(f"{host}: {sockaddr[0]} not allowed")
            continue
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            sock.connect(sockaddr)  # the very address that was checked
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    raise last_error


class _HTTP(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _connection


class _HTTPS(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTP, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_HTTPS, req, context=self._context)


def _opener():
    opener = urllib.request.OpenerDirector()
    for handler in (
        _HTTPHandler(),
        _HTTPSHandler(),
        outbound._NoRedirect(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


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
        with _opener().open(request, timeout=TIMEOUT_SECONDS) as answer:
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
