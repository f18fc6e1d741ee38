"""Which destinations a tracking link may redirect to (no open redirect).

Pure functions over strings. A destination must be an absolute ASCII http(s)
URL whose host is one of the campaign's allowed domains or a subdomain of one.
Tricks browsers fall for are refused: other schemes (``javascript:``,
``data:``), scheme-relative ``//host``, userinfo (``https://allowed.com@evil.com``),
backslashes and control characters, and internationalised hosts (non-ASCII or
``xn--`` punycode labels) unless the host is exactly an allowed domain. A destination
that already names an ``afx_click`` is refused too: the redirect adds the visit's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit

from afflux.shared.core.terms import normalize_domain

MAX_URL_LENGTH = 2048
CLICK_PARAM = "afx_click"  # the parameter the redirect adds (afflux.clicks.links.prepare)
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class BadDestination(ValueError):
    """The reason a destination URL is refused."""


UNSAFE_IN_URL = '"<>{}|^`\\'  # what RFC 3986 never allows unencoded (besides space)


def location_safe(url: str) -> str:
    """``url`` with the characters of ``UNSAFE_IN_URL`` percent-encoded, the rest as it is:
    for the Location of links stored before such destinations were refused."""
    if not any(c in UNSAFE_IN_URL for c in url):
        return url
    return "".join(f"%{ord(c):02X}" if c in UNSAFE_IN_URL else c for c in url)


def check_destination(url: str, allowed_domains: Iterable[str]) -> None:
    """Return quietly when ``url`` may be a link's destination, else raise BadDestination."""
    allowed = [normalize_domain(d) for d in allowed_domains if d.strip()]
    if not allowed:
        raise BadDestination("the campaign has no allowed_domains: no destination is allowed")
    if len(url) > MAX_URL_LENGTH:
        raise BadDestination(f"longer than {MAX_URL_LENGTH} characters")
    if not url.isascii():
        raise BadDestination("must be ASCII: percent-encode the path, use the registered host")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise BadDestination("must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadDestination(f"not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise BadDestination("must be an absolute http:// or https:// URL")
    if not url.lower().startswith(f"{parts.scheme.lower()}://"):
        raise BadDestination("must be an absolute http:// or https:// URL")
    unsafe = sorted({c for c in url if c in UNSAFE_IN_URL})
    if unsafe:
        # Sent as they are in the redirect's Location, they reach the shop raw: markup
        # in a parameter a shop echoes.
        raise BadDestination(
            f"must percent-encode {' '.join(repr(c) for c in unsafe)}: RFC 3986 does not"
            " allow them in a URL"
        )
    if "@" in parts.netloc:
        raise BadDestination("must not carry user information (user@host)")
    if CLICK_PARAM in _query_names(parts.query):
        raise BadDestination(
            f"must not carry {CLICK_PARAM}: the redirect adds the visit's own click id, and a"
            " shop that reads the first one would credit a fixed click for every visit"
        )
    host = normalize_domain(parts.hostname or "")
    if not host:
        raise BadDestination("has no host")
    if port == 0:
        raise BadDestination("port 0 is not a valid port")
    labels = host.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise BadDestination(f"host {host!r} is not a valid domain name")
    if any(label.startswith("xn--") for label in labels):
        if host not in allowed:
            raise BadDestination(
                f"internationalised host {host!r} is not exactly an allowed domain"
            )
        return
    if not any(host == d or host.endswith(f".{d}") for d in allowed):
        raise BadDestination(f"host {host!r} is not on the campaign's allowed domains")


def _query_names(query: str) -> set[str]:
    """The query's parameter names, decoded and lower-cased (``&`` and ``;`` separate)."""
    return {unquote_plus(pair.partition("=")[0]).lower() for pair in re.split("[&;]", query)}


def is_allowed(url: str, allowed_domains: Iterable[str]) -> bool:
    try:
        check_destination(url, allowed_domains)
    except BadDestination:
        return False
    return True
