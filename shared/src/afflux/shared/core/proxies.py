"""Who the client is when a proxy may stand in between: the TCP peer, unless the peer
is a trusted proxy, and then the right-most ``X-Forwarded-For`` entry that is not
itself a trusted proxy (entries further left are whatever the client wrote).

Plain functions; ``afflux.shared.io.http.client_address`` applies them to a request
and the clicks redirect to its raw headers. docs/reliability.md ("Client address").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDRs (host bits allowed); ValueError names the bad one."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return tuple(ipaddress.ip_network(p, strict=False) for p in parts)


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def in_networks(address: str, networks: Sequence[Network]) -> bool:
    """``address`` lies in one of ``networks`` (never when it is no IP address)."""
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def joined_lines(lines: Sequence[str]) -> str | None:
    """The values of a header sent on several lines, as the one list HTTP makes of them
    (joined with commas, in order); None when the header was not sent."""
    return ", ".join(lines) if lines else None


def client_address(peer: str, forwarded_for: str | None, trusted: Callable[[str], bool]) -> str:
    """The client behind ``peer``: the peer itself unless ``trusted(peer)``; then the
    right-most ``forwarded_for`` hop that is not trusted (the peer when that hop is no IP
    address), or the left-most hop when every one is trusted."""
    if forwarded_for is None or not trusted(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop if is_address(hop) else peer
    return hops[0] if hops and is_address(hops[0]) else peer
