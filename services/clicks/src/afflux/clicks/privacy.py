"""The client's address, kept only as a keyed hash (which proxies are trusted to name it:
afflux.shared.io.http.client_address)."""

from __future__ import annotations

import hashlib
import hmac


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
