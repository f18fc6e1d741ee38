"""IPs only as keyed hashes; X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest

from afflux.clicks.privacy import IpHasher
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
