"""Which client addresses count as one client for click quality and the ``same_ip`` signal.

An IPv4 address is one client (a household or an office behind its router). An IPv6
host is handed a whole prefix, a /64 at the least (2^64 addresses, often a /56 or a
/48), and may pick a new source address inside it for every request: counted per full
address, one host rotating its address is a new client each time. So an IPv6 address
counts as its network of ``v6_prefix_bits`` (/64 by default). An IPv6 address that
carries an IPv4 client (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002:…``, Teredo
``2001:0:…``) is that IPv4 address, so a dual-stack listener and a tunnel see the same
client as an IPv4 listener does.

Plain functions; the clicks service hashes the group (afflux.clicks.privacy), and a
merchant hashing a buyer's address for the ``same_ip`` signal groups it the same way.
docs/clicks.md ("IPv6").
"""

from __future__ import annotations

import ipaddress

DEFAULT_IPV6_PREFIX_BITS = 64
MIN_IPV6_PREFIX_BITS = 32
MAX_IPV6_PREFIX_BITS = 128


def address_group(address: str, v6_prefix_bits: int = DEFAULT_IPV6_PREFIX_BITS) -> str:
    """The client ``address`` stands for: an IPv4 address itself (``198.51.100.9``), an
    IPv6 address its network of ``v6_prefix_bits`` in compressed form
    (``2001:db8:1:2::/64``, the zone id dropped), an IPv6 address carrying an IPv4 client
    that IPv4 address. Anything that is no IP address (a test client's name, an empty
    peer) is returned unchanged. ValueError only for ``v6_prefix_bits`` outside 32..128."""
    if not MIN_IPV6_PREFIX_BITS <= v6_prefix_bits <= MAX_IPV6_PREFIX_BITS:
        raise ValueError(
            f"v6_prefix_bits must be {MIN_IPV6_PREFIX_BITS} to {MAX_IPV6_PREFIX_BITS},"
            f" not {v6_prefix_bits}"
        )
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    carried = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
    if carried is not None:
        return str(carried)
    network = ipaddress.IPv6Network((int(ip), v6_prefix_bits), strict=False)
    return f"{network.network_address}/{v6_prefix_bits}"
