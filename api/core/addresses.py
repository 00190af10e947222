"""Who is calling, behind trusted proxies (API_TRUSTED_PROXIES; docs/protocol-choices.md,
"Several processes"): the client address and the scheme a request came with.

``client_origin`` decides both; ``TrustedProxies``, a falcon middleware (and the API's WSGI front
before it), writes them into the WSGI environ (``REMOTE_ADDR``, ``wsgi.url_scheme``) before any
resource runs, so every reader of ``req.remote_addr`` and ``req.scheme`` — the API edge, the
pages, the access and request logs, the rate limits, allowed addresses (111), secure cookies,
the URL an OAuth signature covers — sees the same client. With no trusted proxy nothing changes
and no header is read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import falcon

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_SCHEMES = ("http", "https")


def parse_proxies(text: str) -> tuple[IpNetwork, ...]:
    """The networks of ``API_TRUSTED_PROXIES`` (comma-separated addresses or CIDR ranges);
    ValueError naming the first one that does not parse."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"API_TRUSTED_PROXIES: not an address or CIDR range: {entry!r}"
                             ) from None
    return tuple(networks)


def parse_address(text: str) -> IpAddress | None:
    """An address as a hop of ``X-Forwarded-For`` may write it: ``1.2.3.4``, ``1.2.3.4:5678``,
    ``2001:db8::1``, ``[2001:db8::1]`` or ``[2001:db8::1]:443``; an IPv4-mapped IPv6 address as
    the IPv4 one. None for anything else (``unknown``, a zone id, junk)."""
    text = text.strip()
    if "%" in text:  # a zone id names an interface, not an address
        return None
    if text.startswith("["):
        text, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return None
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has two or more colons
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def client_origin(peer: str, forwarded_for: str | None, forwarded_proto: str | None,
                  scheme: str, trusted: Sequence[IpNetwork]) -> tuple[str, str]:
    """(client address, scheme) of a request from ``peer`` (the TCP peer) that arrived as
    ``scheme``, with these ``X-Forwarded-For`` and ``X-Forwarded-Proto`` values.

    From a peer outside ``trusted`` the headers are ignored: (peer, scheme). From a trusted one,
    the client is the right-most hop of ``X-Forwarded-For`` that is not a trusted proxy (each
    proxy appends the address it saw, so hops to its left are whatever the client wrote); when
    every hop is trusted, the left-most. A hop that does not parse ends the walk: the last
    trusted address is the client then (a proxy writes real addresses, so junk there is the
    client's and names nobody). ``X-Forwarded-Proto``'s right-most value (the nearest proxy's),
    if it is http or https, is the scheme.
    """
    address = parse_address(peer)
    if address is None or not _within(address, trusted):
        return peer, scheme
    client = address
    for hop in reversed((forwarded_for or "").split(",")):
        if not hop.strip():
            continue
        parsed = parse_address(hop)
        if parsed is None:
            break
        client = parsed
        if not _within(parsed, trusted):
            break
    proto = (forwarded_proto or "").rpartition(",")[2].strip().lower()
    return str(client), proto if proto in _SCHEMES else scheme


def _within(address: IpAddress, networks: Sequence[IpNetwork]) -> bool:
    return any(address in network for network in networks)


class TrustedProxies:
    """Falcon middleware: the client address and scheme from a trusted proxy's headers, written
    into the environ before routing (``client_origin``)."""

    def __init__(self, text: str) -> None:
        self.networks = parse_proxies(text)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.rewrite(req.env)

    def rewrite(self, env: dict[str, Any]) -> None:
        """Rewrite ``REMOTE_ADDR`` and ``wsgi.url_scheme`` when a trusted proxy sent them (the
        API's calls, which skip falcon, come here straight: api/app.py ApiFront)."""
        if not self.networks:
            return
        env["REMOTE_ADDR"], env["wsgi.url_scheme"] = client_origin(
            env.get("REMOTE_ADDR", "127.0.0.1"), env.get("HTTP_X_FORWARDED_FOR"),
            env.get("HTTP_X_FORWARDED_PROTO"), env["wsgi.url_scheme"], self.networks)
