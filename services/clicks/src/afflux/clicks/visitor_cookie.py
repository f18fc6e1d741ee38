"""The ``afx_vid`` cookie: the visitor's id and a seal only this service can make.

A visitor id is no secret: it is the part of every click id before the dot, and the
click id rides in the landing page's URL (``afx_click``), which shoppers copy and share.
A cookie naming any well-formed id was taken as that visitor, so whoever saw a shopper's
landing URL could click their own link with the shopper's id as cookie and win the
shopper's next order attributed by cookie. The cookie now holds
``<visitor_id>~<seal>``: the seal is an HMAC of the id under a key derived from the
service's secret (``AFFLUX_CLICKS_IP_HASH_SECRET``), so a cookie without a valid seal
is a new visitor.
"""

from __future__ import annotations

import hmac
import re

SEPARATOR = "~"
_PURPOSE = b"afflux afx_vid cookie seal v1"
_SEAL_HEX = 32  # 128 bits
_VALUE = re.compile(rf"(v_[0-9a-f]{{32}}){SEPARATOR}([0-9a-f]{{{_SEAL_HEX}}})")


class VisitorSeal:
    """Seals visitor ids into cookie values, and opens only values it sealed."""

    def __init__(self, secret: bytes) -> None:
        # A key of its own: a seal says nothing of the IP hashes made with the secret.
        self._key = hmac.digest(secret, _PURPOSE, "sha256")

    def _seal(self, visitor: str) -> str:
        return hmac.digest(self._key, visitor.encode(), "sha256")[: _SEAL_HEX // 2].hex()

    def cookie_value(self, visitor: str) -> str:
        return f"{visitor}{SEPARATOR}{self._seal(visitor)}"

    def visitor_of(self, value: str) -> str | None:
        """The visitor a cookie value names, when this service sealed it (else None:
        a new visitor)."""
        found = _VALUE.fullmatch(value)
        if found is None:
            return None
        visitor, seal = found.groups()
        return visitor if hmac.compare_digest(seal, self._seal(visitor)) else None


def visitor_id_of(cookie_value: str) -> str:
    """The visitor id in an ``afx_vid`` cookie value, as a merchant's page reads it (the
    part before the seal; an id without one is returned as it is)."""
    return cookie_value.partition(SEPARATOR)[0]
