"""Merchant request signatures: HMAC-SHA256 over ``"<t>.<raw body>"``.

Pure functions, no I/O. The header is ``X-Afflux-Signature: t=<unix seconds>,v1=<hex>``;
several ``v1=`` entries may be given (one per active secret during a rotation).
A body-less request (``GET /v1/orders/{order_id}``) signs ``"<t>.GET <path>[?<query>]"``,
the path and query exactly as sent. A POST whose path names the order it acts on (a lead
confirmation, a survey answer) signs ``"<t>.POST <path>\\n<raw body>"``: the body
alone names no order, so a body-only signature would be valid for every order of the
campaign. For URL postbacks the signed message is ``"<t>.<query>"`` where ``<query>`` is
the raw query string up to, not including, the final ``&sig=`` parameter.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

SIGNATURE_HEADER = "X-Afflux-Signature"
MERCHANT_HEADER = "X-Afflux-Merchant"
TOLERANCE_S = 300
SIG_PARAM = "sig"
MAC_HEX_LENGTH = 64  # HMAC-SHA256 as lowercase or uppercase hex
_MAC_HEX = re.compile(f"[0-9a-fA-F]{{{MAC_HEX_LENGTH}}}")
# The POST routes whose path names the order: /v1/leads/{order_id}/confirm and
# /v1/orders/{order_id}/survey, with or without a query.
_PATH_BOUND = re.compile(r"/v1/(?:leads/[^?]+/confirm|orders/[^?]+/survey)(?:\?.*)?", re.DOTALL)


class SignatureRejected(Exception):
    """The request's signature is missing, malformed, stale or wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _mac(secret: str, timestamp: int, payload: bytes) -> str:
    message = str(timestamp).encode() + b"." + payload
    # The one-shot C digest: hmac.new builds a Python HMAC object per call.
    return hmac.digest(secret.encode(), message, "sha256").hex()


def sign(body: bytes, secret: str, now: int) -> str:
    """The ``X-Afflux-Signature`` header value for ``body`` at unix second ``now``."""
    return f"t={now},v1={_mac(secret, now, body)}"


def request_line(method: str, target: str) -> bytes:
    """What a body-less request signs: ``"<METHOD> <path>[?<query>]"``, exactly as sent."""
    return f"{method.upper()} {target}".encode()


def binds_path(target: str) -> bool:
    """Whether a POST to ``target`` signs its request line with its body: the routes whose
    path, not their body, names the order they act on."""
    return _PATH_BOUND.fullmatch(target) is not None


def signed_message(method: str, target: str, body: bytes) -> bytes:
    """What a call to ``target`` with ``body`` signs after ``"<t>."``."""
    if binds_path(target):
        return request_line(method, target) + b"\n" + body
    return body


def sign_call(method: str, target: str, body: bytes, secret: str, now: int) -> str:
    """The ``X-Afflux-Signature`` header value for ``body`` sent to ``target`` (path and
    query, exactly as sent) at unix second ``now``, whichever form the route signs."""
    return sign(signed_message(method, target, body), secret, now)


def sign_request(method: str, target: str, secret: str, now: int) -> str:
    """The ``X-Afflux-Signature`` header value for a GET of ``target`` (path and query)."""
    return sign(request_line(method, target), secret, now)


def sign_query(params: Sequence[tuple[str, str]], secret: str, now: int) -> str:
    """A signed postback query string: ``params``, then ``t``, then ``sig`` last."""
    query = urlencode([*params, ("t", str(now))])
    return f"{query}&{SIG_PARAM}={_mac(secret, now, query.encode())}"


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    timestamp: int
    candidates: tuple[str, ...]


def parse_header(value: str | None) -> ParsedSignature:
    """Split ``t=...,v1=...[,v1=...]``; raise SignatureRejected when malformed."""
    if not value:
        raise SignatureRejected(SIGNATURE_HEADER, "missing signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in value.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep:
            raise SignatureRejected(SIGNATURE_HEADER, "malformed: expected t=<unix s>,v1=<hex>")
        if name == "t":
            if timestamp is not None:
                # Which one was signed would be the parser's guess; a sender means one.
                raise SignatureRejected(SIGNATURE_HEADER, "timestamp t given more than once")
            if not is_unix_seconds(item):
                raise SignatureRejected(SIGNATURE_HEADER, "timestamp t must be unix seconds")
            timestamp = int(item)
        elif name == "v1":
            candidates.append(item.lower())
    if timestamp is None:
        raise SignatureRejected(SIGNATURE_HEADER, "missing timestamp t=")
    if not candidates:
        raise SignatureRejected(SIGNATURE_HEADER, "missing v1= signature")
    if not all(is_mac_hex(c) for c in candidates):
        raise SignatureRejected(SIGNATURE_HEADER, f"v1 must be {MAC_HEX_LENGTH} hex characters")
    return ParsedSignature(timestamp, tuple(candidates))


def is_unix_seconds(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts digits ``int`` cannot read ("²")."""
    return 0 < len(text) <= 12 and text.isascii() and text.isdigit()


def is_mac_hex(text: str) -> bool:
    """Exactly the shape of a MAC; anything else is refused before a compare
    (``hmac.compare_digest`` raises on non-ASCII text)."""
    return _MAC_HEX.fullmatch(text) is not None


def check_timestamp(timestamp: int, now: int, tolerance_s: int = TOLERANCE_S) -> None:
    """Refused beyond ``tolerance_s`` either way, naming by how much and both clocks: a
    replayed request, or a clock off (the merchant's, or this service's own: every correctly
    signed order refused as stale is what a service clock running fast looks like)."""
    clocks = f"t={timestamp}, this service's clock {now}: check both clocks' time sync"
    if timestamp < now - tolerance_s:
        raise SignatureRejected(
            SIGNATURE_HEADER,
            f"timestamp is stale: {now - timestamp} s in the past, more than {tolerance_s} s"
            f" ({clocks})",
        )
    if timestamp > now + tolerance_s:
        raise SignatureRejected(
            SIGNATURE_HEADER,
            f"timestamp is {timestamp - now} s in the future, more than {tolerance_s} s ({clocks})",
        )


def matches(
    secrets: Sequence[str], timestamp: int, payload: bytes, candidates: Sequence[str]
) -> bool:
    """Whether any candidate equals the MAC under any secret (constant-time compares)."""
    found = False
    for secret in secrets:
        expected = _mac(secret, timestamp, payload)
        for candidate in candidates:
            # Keep comparing after a match so timing does not reveal which one matched.
            found |= hmac.compare_digest(expected, candidate)
    return found


def verify(
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    now: int,
    tolerance_s: int = TOLERANCE_S,
    *,
    signed: str = "the body",
) -> None:
    """Raise SignatureRejected unless ``header`` signs ``body`` with one of ``secrets``;
    ``signed`` names what ``body`` is in the refusal."""
    parsed = parse_header(header)
    check_timestamp(parsed.timestamp, now, tolerance_s)
    if not matches(secrets, parsed.timestamp, body, parsed.candidates):
        raise SignatureRejected(
            SIGNATURE_HEADER,
            f"signature does not match {signed} under a current secret of the merchant"
            f" {MERCHANT_HEADER} names",
        )


def signs_only(header: str | None, body: bytes, secrets: Sequence[str]) -> bool:
    """Whether ``header`` is a signature of ``body`` alone (its time not checked): tells a
    sender who signed a path-bound call the old way what to sign, at no risk, since such
    a signature is refused either way."""
    try:
        parsed = parse_header(header)
    except SignatureRejected:
        return False
    return matches(secrets, parsed.timestamp, body, parsed.candidates)


def split_signed_query(raw_query: str) -> tuple[str, str]:
    """(signed part, signature) of a postback query whose last parameter is ``sig``.

    Raises SignatureRejected for every other shape: no ``sig``, ``sig`` not last or
    given twice, or a value that is not a hex MAC.
    """
    signed, sep, signature = raw_query.rpartition(f"&{SIG_PARAM}=")
    if not sep:
        if raw_query.startswith(f"{SIG_PARAM}="):  # given, but first
            raise SignatureRejected(SIG_PARAM, "must be the last query parameter")
        raise SignatureRejected(SIG_PARAM, "missing: the last query parameter must be sig=<hex>")
    if "&" in signature:
        raise SignatureRejected(SIG_PARAM, "must be the last query parameter")
    if signed.startswith(f"{SIG_PARAM}=") or f"&{SIG_PARAM}=" in signed:
        raise SignatureRejected(SIG_PARAM, "given more than once")
    if not is_mac_hex(signature):
        raise SignatureRejected(SIG_PARAM, f"must be {MAC_HEX_LENGTH} hex characters")
    return signed, signature


def verify_query(
    raw_query: str,
    timestamp: int,
    secrets: Sequence[str],
    now: int,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Raise SignatureRejected unless the query's ``sig`` signs the rest of it."""
    signed, signature = split_signed_query(raw_query)
    try:
        check_timestamp(timestamp, now, tolerance_s)
    except SignatureRejected as exc:
        raise SignatureRejected("t", exc.reason) from None
    if not matches(secrets, timestamp, signed.encode(), [signature.lower()]):
        raise SignatureRejected(
            SIG_PARAM,
            "signature does not match the query under a current secret of the merchant"
            " the merchant parameter names",
        )
