"""The client's address, kept only as a keyed hash; proxies trusted only when configured."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Sequence

from afflux.clicks.settings import Network


class IpHasher:
    """HMAC-SHA256 of the client IP under a secret key; the IP itself is never stored."""

    def __init__(self, secret: bytes) -> None:
        self._key = secret
        self._cache: dict[str, str] = {}

    def hash(self, ip: str) -> str:
        known = self._cache.get(ip)
        if known is None:
            known = hmac.new(self._key, ip.encode(), hashlib.sha256).hexdigest()
            if len(self._cache) >= 10_000:
                self._cache.clear()
            self._cache[ip] = known
        return known


class ProxyTrust:
    """Which peers may tell us the client's address and scheme (X-Forwarded-For/-Proto)."""

    def __init__(self, networks: Sequence[Network]) -> None:
        self.networks = tuple(networks)
        self._verdicts: dict[str, bool] = {}

    def trusted(self, address: str) -> bool:
        if not self.networks:
            return False
        verdict = self._verdicts.get(address)
        if verdict is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                verdict = False
            else:
                verdict = any(ip in net for net in self.networks)
            if len(self._verdicts) >= 10_000:
                self._verdicts.clear()
            self._verdicts[address] = verdict
        return verdict

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        """The client address: the peer, or when the peer is a trusted proxy the right-most
        X-Forwarded-For entry that is not itself a trusted proxy."""
        if forwarded_for is None or not self.trusted(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop if _is_ip(hop) else peer
        return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
