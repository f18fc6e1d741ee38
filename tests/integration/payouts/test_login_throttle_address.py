"""The login throttle counts per client address as afflux decides it, never as a header
the caller picks: the payouts app served by the services' own uvicorn set-up
(afflux.shared.io.serving) on a real port and a real Redis. From an untrusted peer
X-Forwarded-For is ignored, so rotating it does not escape the throttle; from a peer
in AFFLUX_TRUSTED_PROXIES each forwarded client has its own count, so one client's
failures never lock another out."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis
import uvicorn
from access_app import PORTAL, AccessWorld, build_world
from redis.asyncio import Redis

from afflux.cli.processes import Child, free_port
from afflux.shared.io.serving import uvicorn_config

pytestmark = pytest.mark.integration
WRONG_KEY = f"afx_ck_{'x' * 43}"
PROXY = "127.0.0.2"  # a proxy that is not 127.0.0.1, as a container or compose peer is


@asynccontextmanager
async def _served(redis_port: int, **settings: str) -> AsyncIterator[tuple[AccessWorld, str]]:
    """The payouts app of an access world with ``settings``, served on a free port."""
    url = f"redis://127.0.0.1:{redis_port}/0"
    with redis.Redis(port=redis_port) as sync:
        sync.flushall()
    client: Redis[bytes] = Redis.from_url(url)
    world = await build_world(client, url, **settings)
    port = free_port()
    # The lifespan (Kafka) is not run: build_world put its state on the app.
    server = uvicorn.Server(uvicorn_config(world.app, "127.0.0.1", port, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "the server did not start"
            await asyncio.sleep(0.01)
        yield world, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        await client.aclose()


async def _login(http: httpx.AsyncClient, key: str, forwarded_for: str) -> int:
    """The status of one login with ``key`` and X-Forwarded-For ``forwarded_for``."""
    page = await http.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    token = match.group(1)
    answer = await http.post(
        "/login",
        content=f"key={key}&csrf_token={token}",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "origin": PORTAL,
            # The login cookie is Secure (the portal is https): sent by hand over http.
            "cookie": f"afx_login_csrf={token}",
            "x-forwarded-for": forwarded_for,
        },
    )
    return answer.status_code


def _client(base_url: str, local_address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=local_address)
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def test_rotating_x_forwarded_for_from_an_untrusted_peer_does_not_escape_the_throttle(
    plain_redis: tuple[Child, int],
) -> None:
    _, redis_port = plain_redis
    async with _served(redis_port) as (world, base_url), _client(base_url) as http:
        answers = [await _login(http, WRONG_KEY, f"203.0.113.{n}") for n in range(1, 6)]
        assert answers == [401] * 5
        # The peer (127.0.0.1) is the client, whatever it writes: even the right key waits.
        assert await _login(http, world.creator_key, "203.0.113.99") == 429


async def test_behind_a_trusted_proxy_one_clients_failures_do_not_lock_out_another(
    plain_redis: tuple[Child, int],
) -> None:
    _, redis_port = plain_redis
    async with (
        _served(redis_port, trusted_proxies=f"{PROXY}/32") as (world, base_url),
        _client(base_url, PROXY) as proxy,
    ):
        attacker, victim = "203.0.113.66", "198.51.100.7"
        answers = [await _login(proxy, WRONG_KEY, attacker) for _ in range(5)]
        assert answers == [401] * 5
        assert await _login(proxy, world.creator_key, attacker) == 429
        # The attacker writing the victim's address in front changes nothing: the proxy
        # appends the address it saw, and the right-most untrusted hop is the client.
        assert await _login(proxy, world.creator_key, f"{victim}, {attacker}") == 429
        assert await _login(proxy, world.creator_key, victim) == 303


async def test_an_ipv6_client_rotating_its_address_inside_its_64_shares_one_count(
    plain_redis: tuple[Child, int],
) -> None:
    """An IPv6 host holds its whole /64: a new source address per attempt is the same
    client, so key guessing cannot escape the throttle by rotating; another /64 is another
    client."""
    _, redis_port = plain_redis
    async with (
        _served(redis_port, trusted_proxies=f"{PROXY}/32") as (world, base_url),
        _client(base_url, PROXY) as proxy,
    ):
        answers = [await _login(proxy, WRONG_KEY, f"2001:db8:66:1::{n:x}") for n in range(1, 6)]
        assert answers == [401] * 5
        assert await _login(proxy, world.creator_key, "2001:db8:66:1::ffff") == 429
        assert await _login(proxy, world.creator_key, "2001:db8:66:2::1") == 303


async def test_forty_wrong_logins_at_once_get_no_more_keys_checked_than_the_limit(
    plain_redis: tuple[Child, int],
) -> None:
    """The count was read before the key was checked and written after: 40 at once had
    27 keys checked against a limit of 5."""
    _, redis_port = plain_redis
    async with _served(redis_port) as (world, base_url), _client(base_url) as http:
        answers = await asyncio.gather(*(_login(http, WRONG_KEY, "") for _ in range(40)))
        assert sorted(answers) == [401] * 5 + [429] * 35
        assert await _login(http, world.creator_key, "") == 429
