"""IPs only as keyed hashes; X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest
from pydantic import ValidationError

from afflux.clicks.privacy import IpHasher
from afflux.clicks.settings import ClicksSettings
from afflux.shared.core.address_group import address_group
from afflux.shared.core.review import IP_PREFIX, ReviewTerms, SignalFacts, signals
from afflux.shared.io.http.client_address import ProxyTrust

pytestmark = pytest.mark.unit


def test_ip_is_stored_as_an_hmac_under_the_secret() -> None:
    hashed = IpHasher(b"secret").hash("203.0.113.7")
    assert hashed == hmac.new(b"secret", b"203.0.113.7", hashlib.sha256).hexdigest()
    assert "203.0.113.7" not in hashed
    assert IpHasher(b"other").hash("203.0.113.7") != hashed


TRUST = ProxyTrust([ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("198.51.100.1", "203.0.113.7", "198.51.100.1"),  # untrusted peer: header ignored
        ("10.0.0.5", "203.0.113.7", "203.0.113.7"),  # trusted proxy: its client
        ("10.0.0.5", "1.1.1.1, 203.0.113.7", "203.0.113.7"),  # right-most hop, not spoofable
        ("10.0.0.5", "203.0.113.7, 10.0.0.9", "203.0.113.7"),  # a chain of trusted proxies
        ("10.0.0.5", "not-an-ip", "10.0.0.5"),
        ("10.0.0.5", None, "10.0.0.5"),
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_ip_honours_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded_for: str | None, client: str
) -> None:
    assert TRUST.client_ip(peer, forwarded_for) == client


def test_without_configured_proxies_nobody_is_trusted() -> None:
    assert ProxyTrust([]).client_ip("127.0.0.1", "203.0.113.7") == "127.0.0.1"


def test_an_ipv6_address_is_hashed_as_its_64_and_a_mapped_ipv4_as_the_ipv4() -> None:
    hasher = IpHasher(b"secret")
    group = hmac.new(b"secret", b"2001:db8:1:2::/64", hashlib.sha256).hexdigest()
    assert hasher.hash("2001:db8:1:2::1") == hasher.hash("2001:db8:1:2::3c") == group
    assert hasher.hash("2001:db8:1:3::1") != group
    assert hasher.hash("::ffff:203.0.113.7") == hasher.hash("203.0.113.7")


def test_the_ipv6_prefix_is_configurable_from_32_to_128_bits() -> None:
    assert IpHasher(b"k", 48).hash("2001:db8:1:2::1") == IpHasher(b"k", 48).hash("2001:db8:1:ff::1")
    assert IpHasher(b"k", 128).hash("2001:db8::1") != IpHasher(b"k", 128).hash("2001:db8::2")
    with pytest.raises(ValueError, match="v6_prefix_bits"):
        IpHasher(b"k", 129)
    for bits in (31, 129):
        with pytest.raises(ValidationError, match="clicks_ipv6_prefix_bits"):
            ClicksSettings(clicks_ipv6_prefix_bits=bits)
    assert ClicksSettings().clicks_ipv6_prefix_bits == 64


def test_a_buyer_on_another_address_of_the_clicks_64_raises_same_ip() -> None:
    """The order's hash is made as documented (HMAC of the address group under the key),
    the click's by the clicks service: a sibling address of one /64 is the same IP."""
    review = ReviewTerms.model_validate({"hold_on": ["same_ip"]})
    click = IpHasher(b"secret").hash("2001:db8:1:2::1")[:IP_PREFIX]  # what attribution keeps

    def facts(buyer: str) -> SignalFacts:
        group = address_group(buyer).encode()
        order = hmac.new(b"secret", group, hashlib.sha256).hexdigest()
        return SignalFacts("ana", "cookie", 60_000, click_ip_hash=click, customer_ip_hash=order)

    assert signals(review, facts("2001:db8:1:2:aaaa::9")) == ("same_ip",)
    assert signals(review, facts("2001:db8:1:3::1")) == ()
