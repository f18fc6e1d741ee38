"""What every HTTP service does at start: check that the broker and Redis answer,
then serve with the one uvicorn set-up (which the benchmarks' baselines share)."""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from redis.asyncio import Redis

from afflux.shared.io.gc_policy import tune_gc
from afflux.shared.io.http_limits import HttpLimits
from afflux.shared.io.kafka import BrokerUnreachable, check_broker
from afflux.shared.io.limited_http import uvicorn_limits
from afflux.shared.io.redis_client import CLUSTER_SCHEME, connect_ready
from afflux.shared.redis_url import redacted


async def check_redis(url: str) -> None:
    """PING the Redis of ``url``: ``redis://`` or a cluster's ``redis-cluster://``."""
    if urlsplit(url).scheme == CLUSTER_SCHEME:
        # Reading the slot map asks the startup nodes; bounded like a plain connect.
        cluster = await asyncio.wait_for(connect_ready(url), timeout=10)
        try:
            await asyncio.wait_for(cluster.execute_command("PING"), timeout=5)
        finally:
            await cluster.aclose()  # type: ignore[union-attr]
        return
    client = Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        await client.ping()
    finally:
        await client.aclose()  # type: ignore[attr-defined]


def unreachable(name: str, bootstrap: str, redis_url: str) -> str | None:
    """None when the broker and Redis answer, else one line saying which and where."""
    try:
        asyncio.run(check_broker(bootstrap))
    except BrokerUnreachable as exc:
        return f"{name}: {exc}"
    try:
        asyncio.run(check_redis(redis_url))
    except Exception as exc:
        return f"{name}: cannot reach Redis at {redacted(redis_url)}: {exc}"
    return None


def _stopped(signum: int, frame: FrameType | None) -> None:
    return None


def uvicorn_config(
    app: Any, host: str, port: int, limits: HttpLimits | None = None, **options: Any
) -> uvicorn.Config:
    """The one uvicorn set-up: ``options`` on top of warnings only, no access log,
    lifespan on, httptools bounded by ``limits`` (default ``HttpLimits()``), uvloop
    when installed, and no proxy headers: uvicorn would otherwise take the client's
    address and scheme from X-Forwarded-For/-Proto of any peer on 127.0.0.1, and see
    every client behind a proxy elsewhere as that proxy; per-address limits ask
    afflux.shared.io.http.client_address instead (``AFFLUX_TRUSTED_PROXIES``)."""
    defaults = {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "proxy_headers": False,
    }
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        **{**defaults, **uvicorn_limits(limits or HttpLimits()), **options},
    )


def serve(
    app: Any,
    host: str,
    port: int,
    limits: HttpLimits | None = None,
    *,
    also_port: int | None = None,
    **options: Any,
) -> bool:
    """Serve until SIGTERM/SIGINT; True when the server started (and then stopped cleanly).

    ``options`` go to ``uvicorn.Config`` as ``uvicorn_config`` says. ``also_port``: one
    server listens on it too (same host).
    """
    tune_gc()
    server = uvicorn.Server(uvicorn_config(app, host, port, limits, **options))
    # uvicorn re-raises the stop signal once it has shut down cleanly; a no-op
    # handler turns that into a normal return, so SIGTERM exits 0.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    if also_port is None:
        server.run()
    else:
        server.run(sockets=[_bound(host, port), _bound(host, also_port)])
    return bool(server.started)


def _bound(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port``, as uvicorn binds its own."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
