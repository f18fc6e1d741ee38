"""Which destinations a link may have: only http(s) on the campaign's allowed domains."""

from __future__ import annotations

import pytest

from afflux.clicks.destinations import BadDestination, check_destination, location_safe
from afflux.clicks.links import Link, prepare

pytestmark = pytest.mark.unit

ALLOWED = ("shop.example.com", "xn--bcher-kva.example")


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/",
        "http://shop.example.com/landing?ref=afflux#top",
        "https://www.shop.example.com/p/1",  # a subdomain of an allowed domain
        "HTTPS://SHOP.EXAMPLE.COM/Path",  # scheme and host are case-insensitive
        "https://shop.example.com./x",  # the fully qualified form (trailing dot)
        "https://shop.example.com:8443/x",
        "https://xn--bcher-kva.example/",  # punycode host exactly as allowed
        "https://shop.example.com/?my_afx_click=1#afx_click=2",  # other names, a fragment
    ],
)
def test_destination_on_an_allowed_domain_is_accepted(url: str) -> None:
    check_destination(url, ALLOWED)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "http"),
        ("data:text/html,<script>alert(1)</script>", "http"),
        ("//shop.example.com/x", "http"),  # scheme-relative
        ("/local/path", "http"),
        ("ftp://shop.example.com/", "http"),
        ("https:shop.example.com", "http"),  # no authority
        ("https://shop.example.com@evil.com/", "user information"),  # userinfo trick
        ("https://user:pw@shop.example.com/", "user information"),
        ("https://evil.com/", "allowed domains"),
        ("https://shop.example.com.evil.com/", "allowed domains"),  # allowed name as a prefix
        ("https://evilshop.example.com/", "allowed domains"),  # suffix without a dot boundary
        ("https://example.com/", "allowed domains"),  # the parent of an allowed domain
        ("https://shöp.example.com/", "ASCII"),  # IDN look-alike, unencoded
        ("https://xn--shp-sna.example.com/", "internationalised"),  # IDN look-alike, punycode
        ("https://a.xn--bcher-kva.example/", "internationalised"),  # punycode, not exact
        ("https://shop.example.com\\@evil.com", "backslash"),
        ("https://shop.example.com/\r\nSet-Cookie: x=1", "control"),
        (" https://shop.example.com/", "control"),
        ("https://shop.example.com:99999/", "valid URL"),
        ("https:///path", "no host"),
        ("https://shop.example.com../x", "valid domain name"),  # one trailing dot only
        ("https://" + "a" * 2100 + ".shop.example.com/", "longer"),
        # a click id of the link's own: the shop may keep the first, a click the creator
        # made once, so every later visit (an embedded or bot one too) would name it
        ("https://shop.example.com/?afx_click=v_1.2", "afx_click"),
        ("https://shop.example.com/?a=1&afx%5Fclick=v_1.2", "afx_click"),  # encoded name
        ("https://shop.example.com/?a=1;afx_click=v_1.2", "afx_click"),  # ; as a separator
        # RFC 3986 never allows them: sent raw, markup reaches a shop that echoes it
        ('https://shop.example.com/b?x="><script>', "must percent-encode '\"' '<' '>'"),
        ("https://shop.example.com/{a}|b^c`d", "must percent-encode '^' '`' '{' '|' '}'"),
    ],
)
def test_unsafe_or_foreign_destination_is_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(BadDestination, match=reason):
        check_destination(url, ALLOWED)


def test_a_campaign_without_allowed_domains_allows_no_destination() -> None:
    with pytest.raises(BadDestination, match="no allowed_domains"):
        check_destination("https://shop.example.com/", ())


@pytest.mark.parametrize(
    ("stored", "location", "with_click"),
    [
        (
            "https://shop.example.com/a?b=%20c#d",
            "https://shop.example.com/a?b=%20c#d",
            "https://shop.example.com/a?b=%20c&afx_click=v_1#d",
        ),
        (
            'https://shop.example.com/b?x="><s>',
            "https://shop.example.com/b?x=%22%3E%3Cs%3E",
            "https://shop.example.com/b?x=%22%3E%3Cs%3E&afx_click=v_1",
        ),
        (
            "https://shop.example.com/{a}#|",
            "https://shop.example.com/%7Ba%7D#%7C",
            "https://shop.example.com/%7Ba%7D?afx_click=v_1#%7C",
        ),
    ],
)
def test_a_destination_stored_before_is_sent_percent_encoded_and_a_valid_one_unchanged(
    stored: str, location: str, with_click: str
) -> None:
    assert location_safe(stored) == location
    target = prepare(Link("c1", "ana", "shop", stored, True, 0))
    assert target.destination == location
    assert f"{target.head}v_1{target.tail}" == with_click
