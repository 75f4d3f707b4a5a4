"""The client's address behind trusted proxies, and the school network it belongs to.

With PORTAIL_BEHIND_PROXY, each proxy appends the peer it saw to X-Forwarded-For. Walking from
the connecting peer leftwards, every hop that is a trusted proxy vouches for the entry before it;
the first entry that is not a trusted proxy is the client (the "rightmost untrusted" rule, as
MDN's X-Forwarded-For page and OWASP ASVS 5.0 §V4.1 recommend: only the part written by our own
proxies can be believed). A hop that is not an IP address ends the walk: the request is counted
against the last hop we could vouch for (the connecting proxy), never a 500, never a skipped
counter.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str, *, variable: str) -> list[Network]:
    """ "127.0.0.1/32, ::1" -> networks; a bad entry stops the start with its name."""
    networks = []
    for item in value.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            message = f"{variable}: {item!r} is not an address or a CIDR range"
            raise ImproperlyConfigured(message) from None
    return networks


def parse_school_networks(value: str) -> list[tuple[Network, str]]:
    """ "203.0.113.0/28=Lycée Claude Monet; 198.51.100.7=Collège Jean Moulin" -> [(net, label)].

    Entries are separated by ";" (labels may hold commas), each "CIDR=Label".
    """
    schools = []
    for item in value.split(";"):
        item = item.strip()
        if not item:
            continue
        cidr, sep, label = item.partition("=")
        if not sep or not label.strip():
            raise ImproperlyConfigured(
                f"PORTAIL_SCHOOL_NETWORKS: {item!r} must read CIDR=Label (entries separated by ';')"
            )
        (network,) = parse_networks(cidr, variable="PORTAIL_SCHOOL_NETWORKS")
        schools.append((network, label.strip()))
    return schools


def _ip(value):
    try:
        return ipaddress.ip_address((value or "").strip().strip("[]"))
    except ValueError:
        return None


def _trusted(ip, networks) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def client_address(remote_addr: str | None, forwarded_for: str, trusted: list[Network]) -> str:
    """The address to count and audit (see the module's docstring)."""
    peer = _ip(remote_addr)
    if peer is None:
        return remote_addr or ""
    client = peer
    if _trusted(peer, trusted):
        for hop in reversed([h for h in forwarded_for.split(",") if h.strip()]):
            ip = _ip(hop)
            if ip is None:
                break  # not an address: the proxy that passed it on answers for it
            client = ip
            if not _trusted(ip, trusted):
                break
    if client.version == 6 and client.ipv4_mapped:
        client = client.ipv4_mapped
    return str(client)


@lru_cache(maxsize=4096)
def _school_of(address: str, schools: tuple) -> str:
    ip = _ip(address)
    if ip is None:
        return ""
    for network, label in schools:
        if ip.version == network.version and ip in network:
            return label
    return ""


def school_network(address: str) -> str:
    """The label of the declared school network holding `address`, or ""."""
    return _school_of(address or "", tuple(settings.PORTAIL_SCHOOL_NETWORKS))


def budget_key(address: str) -> tuple[str, bool]:
    """(the key an address budget is kept under, whether it is a declared school network).

    A school's addresses share one budget; an IPv6 client is counted by its /64, the block one
    household or phone gets (RFC 6177), or a single device could take a fresh address per try.
    """
    school = school_network(address)
    if school:
        return "school:" + school, True
    ip = _ip(address)
    if ip is not None and ip.version == 6:
        return "net:" + str(ipaddress.ip_network(f"{ip}/64", strict=False)), False
    return "ip:" + (address or "unknown"), False
