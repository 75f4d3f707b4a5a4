"""The one way single sign-on calls out: PGT callbacks, CAS single logout, OIDC back-channel logout.

Those URLs come from administrators and from CAS clients (pgtUrl), so each call could be aimed at
the portal's own network (SSRF, OWASP ASVS 5.0 V15.3 / CWE-918). Every connection is checked
where it is made: the host is resolved, and an address that is private, loopback, link-local,
reserved, multicast or unspecified is refused, so a DNS answer cannot change between check and
connect. Redirects are not followed (a 3xx is an answer, not a new target). No proxy from the
environment, and only http/https. Loopback is allowed only when PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_
CALLBACK (tests) or DEBUG (development) is on.
"""

import http.client
import ipaddress
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings


class RefusedDestination(OSError):
    pass


def loopback_allowed() -> bool:
    return settings.DEBUG or settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return loopback_allowed()
    return not (
        ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def _checked_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
    host, port = address
    last_error = RefusedDestination(f"{host}: no allowed address")
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        if not address_allowed(sockaddr[0]):
            last_error = RefusedDestination(f"{host}: {sockaddr[0]} is not a public address")
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


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _checked_connection


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _checked_connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_HTTPSConnection, req, context=self._context)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx is then raised as an HTTPError: not delivered


def _opener():
    opener = urllib.request.OpenerDirector()
    for handler in (
        _HTTPHandler(),
        _HTTPSHandler(),
        _NoRedirect(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def call(url: str, *, form: dict | None = None) -> int | None:
    """GET (or POST `form`, url-encoded) `url`; the HTTP status, or None when not delivered."""
    from urllib.parse import urlencode

    if urlsplit(url).scheme not in ("http", "https"):
        return None
    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(  # noqa: S310  (scheme checked above)
        url,
        data=data,
        headers={"Content-Type": "application/x-www-form-urlencoded"} if data else {},
        method="POST" if data is not None else "GET",
    )
    try:
        with _opener().open(request, timeout=settings.PORTAIL_CAS_CALLBACK_TIMEOUT) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return None
