"""The client address behind a proxy: the TCP peer unless the peer is a configured
trusted proxy, then the right-most X-Forwarded-For hop that is not itself trusted.
Every service serves without uvicorn's own proxy-header handling."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from afflux.clicks.settings import ClicksSettings
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.core.proxies import client_address, in_networks, joined_lines, parse_networks
from afflux.shared.io.http.client_address import ProxyTrust
from afflux.shared.io.serving import uvicorn_config
from afflux.shared.secret_policy import settings_error

pytestmark = pytest.mark.unit

NETWORKS = parse_networks("10.0.0.0/8, 127.0.0.1, 2001:db8:ff::/48")


def _trusted(address: str) -> bool:
    return in_networks(address, NETWORKS)


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # an untrusted peer is the client, whatever it writes
        ("198.51.100.1", "203.0.113.7", "198.51.100.1"),
        ("127.0.0.2", "203.0.113.7", "127.0.0.2"),  # loopback is not trusted unless listed
        ("198.51.100.1", None, "198.51.100.1"),
        # a trusted proxy names its client: the right-most hop it did not write itself
        ("10.0.0.5", "203.0.113.7", "203.0.113.7"),
        ("10.0.0.5", "198.51.100.7, 203.0.113.7", "203.0.113.7"),  # left: the client's own
        ("10.0.0.5", "203.0.113.7, 10.0.0.9", "203.0.113.7"),  # a chain of trusted proxies
        ("10.0.0.5", " 203.0.113.7 ,, ", "203.0.113.7"),  # blanks and empty hops skipped
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
        ("2001:db8:ff::1", "203.0.113.7", "203.0.113.7"),
        # nothing usable: the proxy itself
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("10.0.0.5", "not-an-ip", "10.0.0.5"),
        ("10.0.0.5", "203.0.113.7, unknown", "10.0.0.5"),  # never skips past a bad hop
        # every hop trusted: the left-most one
        ("10.0.0.5", "10.0.0.7, 10.0.0.9", "10.0.0.7"),
    ],
)
def test_the_client_is_the_peer_unless_a_trusted_proxy_names_it(
    peer: str, forwarded_for: str | None, client: str
) -> None:
    assert client_address(peer, forwarded_for, _trusted) == client
    assert ProxyTrust(NETWORKS).client_ip(peer, forwarded_for) == client


@pytest.mark.parametrize(
    ("peer", "lines", "client"),
    [
        ("10.0.0.5", [], "10.0.0.5"),  # no header: the proxy itself
        ("10.0.0.5", ["203.0.113.7"], "203.0.113.7"),
        # the lines are one list in order: the last line's right-most untrusted hop
        ("10.0.0.5", ["198.51.100.7", "203.0.113.7"], "203.0.113.7"),
        # the last line holds only trusted proxies: the hop before them, on an earlier line
        ("10.0.0.5", ["203.0.113.7", "10.0.0.9"], "203.0.113.7"),
        ("10.0.0.5", ["198.51.100.7, 203.0.113.7", "10.0.0.8, 10.0.0.9"], "203.0.113.7"),
        # an empty line adds no hop; a bad hop on any line still means the proxy
        ("10.0.0.5", ["203.0.113.7", ""], "203.0.113.7"),
        ("10.0.0.5", ["203.0.113.7", "unknown", "10.0.0.9"], "10.0.0.5"),
        # every line trusted: the left-most hop of the first line
        ("10.0.0.5", ["10.0.0.7", "10.0.0.9"], "10.0.0.7"),
        # an untrusted peer is the client, whatever its lines say
        ("198.51.100.1", ["203.0.113.7", "10.0.0.9"], "198.51.100.1"),
    ],
)
def test_forwarded_for_lines_are_read_as_one_list_in_order(
    peer: str, lines: list[str], client: str
) -> None:
    assert client_address(peer, joined_lines(lines), _trusted) == client


def test_without_configured_proxies_nobody_is_trusted() -> None:
    assert ProxyTrust().client_ip("127.0.0.1", "203.0.113.7") == "127.0.0.1"
    assert not in_networks("127.0.0.1", ())


def _request(peer: tuple[str, int] | None, *forwarded_for: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded_for]
    return Request({"type": "http", "method": "POST", "headers": headers, "client": peer})


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        (("10.0.0.5", 4000), ("198.51.100.7",), "198.51.100.7"),
        # several header lines are one list, in order: the last line's last hop counts
        (("10.0.0.5", 4000), ("198.51.100.7", "203.0.113.7"), "203.0.113.7"),
        (("198.51.100.1", 4000), ("203.0.113.7",), "198.51.100.1"),
        (("10.0.0.5", 4000), (), "10.0.0.5"),
        (None, ("203.0.113.7",), "unknown"),
    ],
)
def test_a_request_names_its_client_from_its_peer_and_forwarded_for_lines(
    peer: tuple[str, int] | None, forwarded_for: tuple[str, ...], client: str
) -> None:
    assert ProxyTrust(NETWORKS).of_request(_request(peer, *forwarded_for)) == client


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AFFLUX_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_environment")
def test_trusted_proxies_are_empty_by_default_and_parsed_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert PayoutsSettings().trusted_proxy_networks() == ()
    monkeypatch.setenv("AFFLUX_TRUSTED_PROXIES", "172.18.0.1, 10.0.0.0/8")
    assert [str(n) for n in PayoutsSettings().trusted_proxy_networks()] == [
        "172.18.0.1/32",
        "10.0.0.0/8",
    ]
    monkeypatch.setenv("AFFLUX_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal")
    with pytest.raises(ValidationError) as refused:
        PayoutsSettings()
    assert "AFFLUX_TRUSTED_PROXIES" in settings_error(refused.value)


@pytest.mark.usefixtures("clean_environment")
def test_the_redirect_trusts_the_shared_proxies_and_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AFFLUX_TRUSTED_PROXIES", "10.0.0.0/8")
    monkeypatch.setenv("AFFLUX_CLICKS_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    networks = [str(n) for n in ClicksSettings().trusted_networks()]
    assert networks == ["10.0.0.0/8", "127.0.0.1/32"]
    monkeypatch.delenv("AFFLUX_TRUSTED_PROXIES")
    assert [str(n) for n in ClicksSettings().trusted_networks()] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
    ]
    monkeypatch.setenv("AFFLUX_CLICKS_TRUSTED_PROXIES", "bad")
    with pytest.raises(ValidationError) as refused:
        ClicksSettings()
    assert "AFFLUX_CLICKS_TRUSTED_PROXIES" in settings_error(refused.value)


def test_every_service_serves_without_uvicorns_proxy_headers() -> None:
    config = uvicorn_config(object(), "127.0.0.1", 8000)
    assert config.proxy_headers is False
