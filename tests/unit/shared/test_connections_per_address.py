"""Open connections per client address: past the bound a new one from that address is
answered 503 and closed, while other addresses, this host and trusted proxies still get
in. One address trickling heads on 1,010 connections held the whole process cap."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from afflux.shared.io.http_limits import HttpLimits
from afflux.shared.io.limited_http import limited_protocol

pytestmark = pytest.mark.unit

LIMITS = HttpLimits(
    max_connections_per_address=2,
    trusted_proxies=(ipaddress.ip_network("198.51.100.0/24"),),
)


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never reached here
    raise AssertionError("no request is made")


class Transport(asyncio.Transport):
    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer = peer
        self.written = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return (self.peer, 40_000)
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


class Server:
    def __init__(self) -> None:
        self.protocol = limited_protocol(LIMITS)
        self.config = Config(_app, http=self.protocol, ws="none", lifespan="off")
        self.state = ServerState()
        self.open: list[tuple[Any, Transport]] = []

    def connect(self, peer: str) -> Transport:
        protocol = self.protocol(self.config, self.state, {}, asyncio.get_running_loop())
        transport = Transport(peer)
        protocol.connection_made(transport)
        self.open.append((protocol, transport))
        return transport

    def close(self, transport: Transport) -> None:
        for protocol, held in self.open:
            if held is transport:
                protocol.connection_lost(None)


def refused(transport: Transport) -> bool:
    return transport.closed and transport.written.startswith(b"HTTP/1.1 503")


async def test_one_connection_past_the_bound_from_an_address_is_refused() -> None:
    server = Server()
    first, second = server.connect("203.0.113.7"), server.connect("203.0.113.7")
    assert not refused(first)
    assert not refused(second)

    assert refused(server.connect("203.0.113.7"))
    assert not refused(server.connect("203.0.113.8"))  # another client still gets in


async def test_a_closed_connection_frees_its_addresss_room() -> None:
    server = Server()
    first = server.connect("203.0.113.7")
    server.connect("203.0.113.7")
    server.close(first)

    assert not refused(server.connect("203.0.113.7"))


@pytest.mark.parametrize(
    ("peers", "bounded"),
    [
        (["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"], True),  # one /64
        (["2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:1:4::1"], False),  # three /64s
        (["::ffff:203.0.113.7", "203.0.113.7", "::ffff:203.0.113.7"], True),  # one IPv4
        (["::ffff:203.0.113.7", "::ffff:203.0.113.8", "::ffff:203.0.113.9"], False),
        (["198.51.100.4"] * 3, False),  # a trusted proxy
        (["127.0.0.1"] * 3, False),  # this host
        (["::1"] * 3, False),
    ],
)
async def test_which_peers_count_as_one_address(peers: list[str], bounded: bool) -> None:
    server = Server()
    transports = [server.connect(peer) for peer in peers]

    assert refused(transports[-1]) is bounded
    assert not any(refused(t) for t in transports[:-1])
