"""Standard Webhooks signatures (https://www.standardwebhooks.com), as pure functions.

The signed content is ``<webhook-id>.<webhook-timestamp>.<body>``; the key is the
base64-decoded part of the ``whsec_`` secret; the signature header is ``v1,`` and the
base64 HMAC-SHA256. The timestamp is whole seconds since the epoch, an input here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32  # 256 bits: the HMAC-SHA256 block's worth of key


class InvalidSecret(ValueError):
    pass


def secret_from_bytes(raw: bytes) -> str:
    """The ``whsec_`` form of ``raw`` key bytes (callers pass ``secrets.token_bytes``)."""
    if len(raw) < 24:
        raise InvalidSecret("a webhook secret needs at least 24 random bytes")
    return SECRET_PREFIX + base64.b64encode(raw).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret("a webhook secret is whsec_ and base64") from exc
    if not key:
        raise InvalidSecret("a webhook secret may not be empty")
    return key


def signature(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, plus the body's content type."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": signature(secret, msg_id, timestamp_s, body),
        "content-type": "application/json",
    }
