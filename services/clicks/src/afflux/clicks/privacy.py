"""The client's address, kept only as a keyed hash of its group (which proxies are trusted
to name it: afflux.shared.io.http.client_address; what counts as one client:
afflux.shared.core.address_group)."""

from __future__ import annotations

import hashlib
import hmac

from afflux.shared.core.address_group import DEFAULT_IPV6_PREFIX_BITS, address_group


class IpHasher:
    """HMAC-SHA256 of the client's address group under a secret key: an IPv4 address
    itself, an IPv6 address its network of ``v6_prefix_bits`` (so a host rotating its
    address inside its /64 is one address to every quality rule); the IP is never stored."""

    def __init__(self, secret: bytes, v6_prefix_bits: int = DEFAULT_IPV6_PREFIX_BITS) -> None:
        address_group("", v6_prefix_bits)  # refuse a bad length at start, not per click
        self._key = secret
        self._v6_prefix_bits = v6_prefix_bits
        self._cache: dict[str, str] = {}

    def hash(self, ip: str) -> str:
        known = self._cache.get(ip)
        if known is None:
            group = address_group(ip, self._v6_prefix_bits)
            known = hmac.new(self._key, group.encode(), hashlib.sha256).hexdigest()
            if len(self._cache) >= 10_000:
                self._cache.clear()
            self._cache[ip] = known
        return known
