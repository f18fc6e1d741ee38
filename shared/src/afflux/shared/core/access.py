"""Who may read what: the three roles, API key text and its hash, and the rules.

Plain functions over frozen values; the Redis adapters and the FastAPI dependencies
are in afflux.shared.io.http.principals. docs/portal.md ("Access") is the contract.

- ``admin``: the ``AFFLUX_ADMIN_TOKEN``; everything.
- ``merchant`` (subject: a merchant_id): the KPIs and reports of the campaigns whose
  current terms name that merchant.
- ``creator`` (subject: an affiliate_id): its own balance, ledger, statement, KPIs
  and report.

A key is ``afx_ck_`` (creator) or ``afx_mk_`` (merchant) and 43 URL-safe base64
characters (32 random bytes); only its SHA-256 is stored. 256 random bits need no
slow hash or pepper: nobody can search that space from a leaked hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "merchant", "creator"]
KeyRole = Literal["merchant", "creator"]

KEY_PREFIXES: dict[KeyRole, str] = {"creator": "afx_ck_", "merchant": "afx_mk_"}
KEY_RANDOM_BYTES = 32
_KEY_TEXT = re.compile(r"afx_(ck|mk)_[A-Za-z0-9_-]{43}")  # fullmatch: no trailing newline
_ROLE_OF_TAG: dict[str, KeyRole] = {"ck": "creator", "mk": "merchant"}

# Query parameters that would carry a credential: refused whatever their value.
CREDENTIAL_PARAMS = frozenset(
    {"key", "api_key", "apikey", "token", "access_token", "admin_token", "session"}
)


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a role and, for merchant and creator, whose id."""

    role: Role
    subject: str | None = None
    key_id: str | None = None  # the API key that identified it (None: the admin token)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


ADMIN = Principal("admin")


def key_text(role: KeyRole, random_part: str) -> str:
    """The key handed out once: the role's prefix and ``random_part``
    (``secrets.token_urlsafe(KEY_RANDOM_BYTES)``: 43 characters)."""
    return KEY_PREFIXES[role] + random_part


def role_of_key(text: str) -> KeyRole | None:
    """The role a well-formed key names; None for anything that is not a key."""
    match = _KEY_TEXT.fullmatch(text)
    return _ROLE_OF_TAG[match.group(1)] if match else None


def key_hash(text: str) -> str:
    """What is stored in place of the key: its SHA-256, hex."""
    return hashlib.sha256(text.encode()).hexdigest()


def looks_like_credential(text: str) -> bool:
    """True for text carrying a key: a query value must never do so."""
    return "afx_ck_" in text or "afx_mk_" in text


def same_secret(given: str, expected: str) -> bool:
    """Constant-time equality of two secrets (tokens, CSRF tokens)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def may_read_creator(principal: Principal, affiliate_id: str) -> bool:
    """A creator's money, KPIs and report: admin, or that creator's key."""
    return principal.is_admin or (principal.role == "creator" and principal.subject == affiliate_id)


def may_read_campaign(principal: Principal, merchant_of_campaign: str | None) -> bool:
    """A campaign's KPIs and report: admin, or the key of the merchant its terms name
    (``None``: an unknown campaign, which only admin may learn is unknown)."""
    return principal.is_admin or (
        principal.role == "merchant"
        and merchant_of_campaign is not None
        and principal.subject == merchant_of_campaign
    )


def safe_next_path(wanted: str | None) -> str | None:
    """A redirect target after login: a path of this origin only (``/x``, never
    ``//host`` or ``/\\host``, which browsers read as another origin)."""
    if not wanted or not wanted.startswith("/") or wanted.startswith(("//", "/\\")):
        return None
    if any(c in wanted for c in "\r\n\\") or any(ord(c) < 0x20 for c in wanted):
        return None
    return wanted


def landing_path(principal: Principal) -> str:
    """Where a browser goes after logging in without asking for a page: the portal, which
    sends a creator to its balance and shows a merchant (or admin) its campaigns."""
    del principal  # every role starts there
    return "/portal"


def origin_matches(origin: str | None, referer: str | None, own_origins: set[str]) -> bool:
    """A state-changing form must come from a page of this service: its ``Origin``
    (or, when a browser sends none, its ``Referer``'s origin) is one of ours."""
    if origin and origin != "null":
        return origin.rstrip("/") in own_origins
    if referer:
        scheme, sep, rest = referer.partition("://")
        if not sep:
            return False
        host = rest.split("/", 1)[0]
        return f"{scheme}://{host}" in own_origins
    return False


@dataclass(frozen=True)
class Throttle:
    """Failed logins per client address: ``limit`` within ``window_s`` seconds, then
    each further attempt waits out the window (answered 429 with Retry-After)."""

    limit: int = 5
    window_s: int = 60

    def blocked(self, failures: int) -> bool:
        return failures >= self.limit
