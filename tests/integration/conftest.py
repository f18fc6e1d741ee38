"""Redis for the integration tests beyond the session's ``infra``: a private Redis
Cluster of three masters, and ``ledger_redis_url``, which runs a test once on a plain
Redis and once on the cluster, each emptied before the test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from afflux.cli.embedded import RedisClusterNodes, start_redis, start_redis_cluster
from afflux.cli.processes import Child, free_port

# The helpers beside this file (bounded_reads, log_holes), for every folder's tests, run
# alone or with the rest.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """Three masters on loopback ports holding all 16384 slots, for the whole session."""
    work = tmp_path_factory.mktemp("redis-cluster")
    cluster = start_redis_cluster(work / "data", work / "logs")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def plain_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Child, int]]:
    """One Redis of the ledger tests' own, apart from the session's shared ``infra``."""
    work = tmp_path_factory.mktemp("plain-redis")
    port = free_port()
    child = start_redis(port, work / "data", work / "logs")
    try:
        yield child, port
    finally:
        child.stop()


@pytest.fixture(params=["redis", "redis-cluster"])
def ledger_redis_url(request: pytest.FixtureRequest) -> str:
    """The url of an empty Redis: a plain one, then the cluster (every master flushed)."""
    if request.param == "redis":
        _, port = request.getfixturevalue("plain_redis")
        ports: tuple[int, ...] = (port,)
        url = f"redis://127.0.0.1:{port}/0"
    else:
        cluster: RedisClusterNodes = request.getfixturevalue("redis_cluster")
        ports, url = cluster.ports, cluster.url
    for node_port in ports:
        with redis.Redis(host="127.0.0.1", port=node_port) as node:
            node.flushall()
    return url
