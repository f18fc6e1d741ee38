"""compose.yaml's Redis command, run as its shell script against a real redis-server:
the password from the secret file is required, writes past maxmemory are refused and
nothing is evicted, AOF is on, and the password is in no argument of the process."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from afflux.cli.embedded import redis_binary
from afflux.cli.processes import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "Zq" * 20
SECRET = "/run/secrets/redis_password"


def _interpolated(text: str, variables: dict[str, str]) -> str:
    """Compose's interpolation of what the script uses: ${VAR:-default} and $$."""

    def value(match: re.Match[str]) -> str:
        return variables.get(match.group(1)) or match.group(2)

    return re.sub(r"\$\{(\w+):-([^}]*)\}", value, text).replace("$$", "$")


@pytest.fixture
def compose_redis(tmp_path: Path) -> Iterator[tuple[int, int]]:
    service = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))["services"]["redis"]
    assert service["command"][:2] == ["sh", "-c"]
    script = _interpolated(service["command"][2], {"AFFLUX_REDIS_MAXMEMORY": "8mb"})
    secret = tmp_path / "redis_password"
    secret.write_text(PASSWORD + "\n")
    port = free_port()
    # The image's entrypoint only switches user; here the same server runs on a free port.
    local = f"{redis_binary()} - --port {port} --bind 127.0.0.1 --dir {tmp_path}"
    assert "docker-entrypoint.sh redis-server -" in script
    assert SECRET in script
    script = script.replace("docker-entrypoint.sh redis-server -", local).replace(
        SECRET, str(secret)
    )
    process = subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL)
    try:
        yield port, process.pid  # sh execs the server: the same process
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _ready(client: Redis) -> None:  # type: ignore[type-arg]
    """Wait for the server this test started to accept connections (it starts in ms)."""
    for _ in range(200):
        try:
            await client.ping()
            return
        except RedisConnectionError:
            await asyncio.sleep(0.05)
    raise AssertionError("redis did not answer within 10 s")


async def _fill(client: Redis) -> tuple[int, str]:  # type: ignore[type-arg]
    """Write 1 KB values until Redis refuses one; how many it took, and why it refused."""
    for written in range(10_000):
        try:
            await client.set(f"k{written}", b"x" * 1024)
        except ResponseError as exc:
            return written, str(exc)
    raise AssertionError("10 MB fitted under maxmemory: nothing was refused")


async def test_compose_redis_requires_the_password_and_never_evicts(
    compose_redis: tuple[int, int],
) -> None:
    port, _ = compose_redis
    authed = Redis(host="127.0.0.1", port=port, password=PASSWORD)
    anonymous = Redis(host="127.0.0.1", port=port)
    try:
        await _ready(authed)
        with pytest.raises(AuthenticationError):
            await anonymous.ping()
        config = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in (await authed.config_get("*")).items()
        }
        assert config["maxmemory-policy"] == "noeviction"
        assert config["maxmemory"] == str(8 * 1024 * 1024)
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "everysec"
        written, refusal = await _fill(authed)  # 10 MB offered to an 8 MB Redis
        assert "maxmemory" in refusal
        assert written > 1_000
        assert (await authed.info("stats"))["evicted_keys"] == 0
        assert await authed.dbsize() == written
    finally:
        await authed.aclose()  # type: ignore[attr-defined]
        await anonymous.aclose()  # type: ignore[attr-defined]


async def test_the_password_is_in_no_argument_or_environment_of_the_server(
    compose_redis: tuple[int, int],
) -> None:
    port, pid = compose_redis
    client = Redis(host="127.0.0.1", port=port, password=PASSWORD)
    try:
        await _ready(client)
    finally:
        await client.aclose()  # type: ignore[attr-defined]
    process = Path(f"/proc/{pid}")
    assert b"redis-server" in (process / "cmdline").read_bytes()
    assert PASSWORD.encode() not in (process / "cmdline").read_bytes()
    assert PASSWORD.encode() not in (process / "environ").read_bytes()


@pytest.mark.parametrize(
    ("password", "healthy"),
    [
        (PASSWORD, True),  # the secret file the server was started with
        ("not-" + PASSWORD, False),  # a NOAUTH/WRONGPASS answer is not PONG
    ],
)
async def test_the_healthcheck_authenticates_with_the_secret_file(
    compose_redis: tuple[int, int], tmp_path: Path, password: str, healthy: bool
) -> None:
    port, _ = compose_redis
    client = Redis(host="127.0.0.1", port=port, password=PASSWORD)
    try:
        await _ready(client)
    finally:
        await client.aclose()  # type: ignore[attr-defined]
    service = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))["services"]["redis"]
    kind, check = service["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    secret = tmp_path / "checked_password"
    secret.write_text(password + "\n")
    cli = str(Path(redis_binary()).with_name("redis-cli"))
    check = _interpolated(check, {}).replace(SECRET, str(secret))
    check = check.replace("redis-cli ping", f"{cli} -p {port} ping")
    done = subprocess.run(["sh", "-c", check], capture_output=True, timeout=30, check=False)
    assert (done.returncode == 0) is healthy
