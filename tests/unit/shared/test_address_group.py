"""Which client addresses count as one client (afflux.shared.core.address_group)."""

from __future__ import annotations

import pytest

from afflux.shared.core.address_group import address_group

pytestmark = pytest.mark.unit


CASES = [
    # (address, prefix bits, group)
    # An IPv4 address is its own group, written as the clicks service always hashed it.
    ("198.51.100.9", 64, "198.51.100.9"),
    ("0.0.0.0", 64, "0.0.0.0"),
    # IPv6, full and compressed, upper or lower case: its /64.
    ("2001:0db8:0001:0002:0000:0000:0000:0001", 64, "2001:db8:1:2::/64"),
    ("2001:db8:1:2::1", 64, "2001:db8:1:2::/64"),
    ("2001:db8:1:2::3c", 64, "2001:db8:1:2::/64"),
    ("2001:DB8:1:2:FFFF:FFFF:FFFF:FFFF", 64, "2001:db8:1:2::/64"),
    # The neighbouring /64 is another client.
    ("2001:db8:1:3::1", 64, "2001:db8:1:3::/64"),
    # Another prefix length groups more or less.
    ("2001:db8:1:2ff::1", 56, "2001:db8:1:200::/56"),
    ("2001:db8:1:2::1", 48, "2001:db8:1::/48"),
    ("2001:db8:1:2::1", 32, "2001:db8::/32"),
    ("2001:db8:1:2::1", 128, "2001:db8:1:2::1/128"),
    ("::1", 64, "::/64"),
    # A zone id names the host's interface, not the client: dropped.
    ("fe80::1%eth0", 64, "fe80::/64"),
    ("fe80::2%3", 64, "fe80::/64"),
    # IPv4-mapped IPv6 (a dual-stack listener's view of an IPv4 client) is the IPv4 address.
    ("::ffff:198.51.100.9", 64, "198.51.100.9"),
    ("::FFFF:c633:6409", 64, "198.51.100.9"),
    ("::ffff:198.51.100.9", 128, "198.51.100.9"),
    # 6to4 and Teredo carry an IPv4 client: that address.
    ("2002:c633:6409:1::5", 64, "198.51.100.9"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", 64, "192.0.2.45"),
    # No IP address: unchanged, never an exception.
    ("", 64, ""),
    ("testclient", 64, "testclient"),
    ("not-an-ip", 64, "not-an-ip"),
    ("2001:db8::1::2", 64, "2001:db8::1::2"),
    ("2001:db8:1:2::1/64", 64, "2001:db8:1:2::1/64"),
    ("[2001:db8::1]", 64, "[2001:db8::1]"),
    ("[2001:db8::1]:443", 64, "[2001:db8::1]:443"),
    ("198.51.100.9:443", 64, "198.51.100.9:443"),
    ("256.1.1.1", 64, "256.1.1.1"),
    ("01.2.3.4", 64, "01.2.3.4"),
    (" 198.51.100.9", 64, " 198.51.100.9"),
    ("fe80::1%", 64, "fe80::1%"),
    ("\x00", 64, "\x00"),
]


@pytest.mark.parametrize(
    ("address", "bits", "group"), CASES, ids=[f"{a!r}/{b}" for a, b, _ in CASES]
)
def test_an_address_counts_as_its_group(address: str, bits: int, group: str) -> None:
    assert address_group(address, bits) == group


def test_the_default_groups_ipv6_by_its_64() -> None:
    assert address_group("2001:db8:1:2::abcd") == "2001:db8:1:2::/64"


@pytest.mark.parametrize("bits", [31, 129, 0, -64])
def test_a_prefix_length_outside_32_to_128_is_refused(bits: int) -> None:
    with pytest.raises(ValueError, match="v6_prefix_bits"):
        address_group("2001:db8::1", bits)
