"""Which client a Redis url gives, and the urls refused with the reason."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from afflux.shared.io.redis_client import connect

pytestmark = pytest.mark.unit


async def test_a_redis_url_gives_a_plain_client_on_its_database() -> None:
    client = connect("redis://127.0.0.1:6390/3")
    try:
        assert isinstance(client, Redis)
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 3)
    finally:
        await client.aclose()  # type: ignore[attr-defined]


async def test_a_cluster_url_gives_a_cluster_client_with_every_startup_node() -> None:
    client = connect("redis-cluster://127.0.0.1:7001,127.0.0.1:7002,10.0.0.3:7003")
    try:
        assert isinstance(client, RedisCluster)
        names = sorted(client.nodes_manager.startup_nodes)
        assert names == ["10.0.0.3:7003", "127.0.0.1:7001", "127.0.0.1:7002"]
    finally:
        await client.aclose()  # type: ignore[union-attr]


@dataclass(frozen=True)
class Case:
    url: str
    reason: str


REFUSED = {
    # a cluster has database 0 only
    "cluster database": Case("redis-cluster://127.0.0.1:7001/2", "only database 0"),
    "no startup node": Case("redis-cluster://", "at least one startup node"),
    "port missing": Case(
        "redis-cluster://127.0.0.1:7001,127.0.0.1", "'127.0.0.1' is not host:port"
    ),
    "port not a number": Case("redis-cluster://127.0.0.1:x", "'127.0.0.1:x' is not host:port"),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_a_bad_cluster_url_is_refused_naming_the_reason(case: Case) -> None:
    with pytest.raises(ValueError, match=case.reason):
        connect(case.url)
