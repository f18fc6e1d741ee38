"""Redis out of reach while a route uses it is a 503 the client retries, never a 500:
against a real redis-server stopped under the app, and against a port nobody listens on."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from afflux.cli.embedded import start_redis
from afflux.cli.processes import free_port
from afflux.shared.io.http.problems import install_problem_handlers

pytestmark = pytest.mark.integration


def app_over(redis: Redis) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/v1/things/{key}")
    async def put(key: str) -> dict[str, int]:
        await redis.set(f"thing:{key}", 1)
        return {"stored": 1}

    return app


async def post(app: FastAPI, key: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://afflux") as client:
        return await client.post(f"/v1/things/{key}")


def assert_retry_later(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    assert answer.json() == {"detail": [{"field": None, "reason": "redis unavailable, retry"}]}


async def test_a_request_while_redis_is_stopped_is_a_503_and_one_after_its_restart_works(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    port = free_port()
    work = tmp_path_factory.mktemp("redis-away")
    server = start_redis(port, work / "data", work)
    redis: Redis = Redis(port=port, socket_connect_timeout=1, socket_timeout=1)
    app = app_over(redis)
    try:
        assert (await post(app, "before")).status_code == 200
        server.stop()

        assert_retry_later(await post(app, "during"))

        server = start_redis(port, work / "data", work)
        assert (await post(app, "after")).status_code == 200
    finally:
        await redis.aclose()
        server.stop()


async def test_a_request_to_a_redis_nobody_listens_on_is_a_503() -> None:
    redis: Redis = Redis(port=free_port(), socket_connect_timeout=1)
    try:
        assert_retry_later(await post(app_over(redis), "nowhere"))
    finally:
        await redis.aclose()
