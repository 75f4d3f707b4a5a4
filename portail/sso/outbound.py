"""The one way single sign-on calls out: PGT callbacks, CAS single logout, OIDC back-channel logout.

Those URLs come from administrators and from CAS clients (pgtUrl), so each call could be aimed at
the portal's own network (SSRF, OWASP ASVS 5.0 V15.3 / CWE-918). Every connection is checked
where it is made: the host is resolved, and an address that is private, loopback, link-local,
reserved, multicast or unspecified is refused, so a DNS answer cannot change between check and
connect. Redirects are not followed (a 3xx is an answer, not a new target). No proxy from the
environment, and only http/https. Loopback is allowed only when PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_
CALLBACK (tests) or DEBUG (development) is on.
"""

import functools
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


# IPv6 forms that carry an IPv4 address a gateway or translator would reach on our behalf.
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 §2.1
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: never global
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 §2.1 (SIIT)
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291 §2.5.5.1: deprecated


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4 (RFC 3056, 2002::/16), NAT64 (RFC 6052) or SIIT address reaches."""
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64_WELL_KNOWN or ip in IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped  # ::ffff:a.b.c.d is the IPv4 socket itself (loopback included)
        elif ip in NAT64_LOCAL_USE or (ip in IPV4_COMPATIBLE and int(ip) > 1):
            return False
        elif (embedded := _embedded_ipv4(ip)) is not None:
            # Reached through a relay or translator: only a public IPv4 destination, never
            # loopback (not this host's loopback anyway).
            return not embedded.is_loopback and address_allowed(str(embedded))
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


def _checked_connection(
    address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, *, allowed
):
    host, port = address
    last_error = RefusedDestination(f"{host}: no allowed address")
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        if not allowed(sockaddr[0]):
            last_error = RefusedDestination(f"{host}: {sockaddr[0]} is not an allowed address")
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


class _CheckedConnection:
    """Mixin of the two connection classes: every socket goes through _checked_connection."""

    def __init__(self, *args, allowed, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = functools.partial(_checked_connection, allowed=allowed)


class _HTTPConnection(_CheckedConnection, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_CheckedConnection, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allowed):
        super().__init__()
        self.allowed = allowed

    def http_open(self, req):
        return self.do_open(_HTTPConnection, req, allowed=self.allowed)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allowed):
        super().__init__()
        self.allowed = allowed

    def https_open(self, req):
        return self.do_open(_HTTPSConnection, req, context=self._context, allowed=self.allowed)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx is then raised as an HTTPError: not delivered


def opener(allowed=None) -> urllib.request.OpenerDirector:
    """A urllib opener for outbound calls: each connection checks the very address it connects
    to with `allowed` (default `address_allowed`: public addresses only), no redirect followed,
    no proxy from the environment. The one guard of the CAS callbacks, the SAML metadata URLs and
    the federation's calls."""
    check = allowed or address_allowed
    built = urllib.request.OpenerDirector()
    for handler in (
        _HTTPHandler(check),
        _HTTPSHandler(check),
        _NoRedirect(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        built.add_handler(handler)
    return built


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
        with opener().open(request, timeout=settings.PORTAIL_CAS_CALLBACK_TIMEOUT) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return None
