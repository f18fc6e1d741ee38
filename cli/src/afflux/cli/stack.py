"""The embedded stack: broker, Redis and the four services as child processes.

Used by ``afflux up``, ``afflux demo``, the benchmarks and the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from afflux.cli.brokers import BrokerKind, broker_from_env, start_chosen_broker
from afflux.cli.embedded import start_redis
from afflux.cli.gate import BrokerGate
from afflux.cli.object_store import ObjectStore, start_object_store
from afflux.cli.port_owner import listens_on
from afflux.cli.processes import (
    Child,
    StartFailed,
    free_port,
    port_in_use,
    reserve_ports,
    stop_together,
)
from afflux.cli.storage import BrokerStorage, object_store_dir
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.io.campaign_publish import publish_terms
from afflux.shared.io.http import tls as oneshot
from afflux.shared.io.kafka import PartitionsMismatch, create_topics

SERVICES = ("clicks", "orders", "attribution", "payouts")
DEFAULT_PORTS = {"clicks": 8001, "orders": 8002, "payouts": 8003, "attribution": 8004}


@dataclass
class StackOptions:
    work_dir: Path
    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    partitions: int = 4
    env: dict[str, str] = field(default_factory=dict)
    redis_aof: bool = False
    gate_broker: bool = False  # clients reach the broker through a BrokerGate (fault tests)
    # Where the embedded broker keeps its log: "durable" in a local S3 store
    # (SeaweedFS) under work_dir, "memory" for as long as the broker process lives.
    # The commands choose "durable" unless told otherwise (``--storage``); a bare
    # Stack, as most end-to-end tests build it, runs the faster memory storage.
    storage: BrokerStorage = "memory"
    # Which broker: the embedded Tansu or Apache Kafka (always on disk, under work_dir;
    # ``storage`` does not apply). ``afflux up --broker`` chooses; a bare Stack takes
    # the test run's choice (AFFLUX_TEST_BROKER, tansu when unset).
    broker: BrokerKind = field(default_factory=broker_from_env)


class Stack:
    """Starts what is not given, stops only what it started."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.infra: list[Child] = []
        self.services: dict[str, Child] = {}
        self.kafka_bootstrap = options.kafka_bootstrap or ""
        self.redis_url = options.redis_url or ""
        self.redis_port: int | None = None
        self.broker_port: int | None = None
        self.object_store: ObjectStore | None = None
        self.gate: BrokerGate | None = None

    @property
    def log_dir(self) -> Path:
        return self.options.work_dir / "logs"

    def start_infra(self) -> None:
        """Object store first (durable storage), then broker and Redis; ``stop`` goes in
        reverse, so the store stops last."""
        reserve_ports(self.options.ports.values())
        if not self.kafka_bootstrap:
            if self.options.storage == "durable" and self.options.broker == "tansu":
                self.object_store = start_object_store(
                    object_store_dir(self.options.work_dir), self.log_dir
                )
                self.infra.append(self.object_store.child)
            self.broker_port = port = free_port()
            if self.options.gate_broker:
                gate_port = free_port()
                self.infra.append(self._start_broker(advertised_port=gate_port))
                self.gate = BrokerGate(gate_port, port).start()
                port = gate_port
            else:
                self.infra.append(self._start_broker())
            self.kafka_bootstrap = f"127.0.0.1:{port}"
        if not self.redis_url:
            if self._log_starts_empty():
                # Redis's offsets, claims and ledger of an earlier run name records the
                # broker no longer holds: kept, the ledger stopped as diverged (stored
                # offset beyond the log's end) and the first order was never credited.
                shutil.rmtree(self.options.work_dir / "redis", ignore_errors=True)
            self.redis_port = free_port()
            self.infra.append(self._start_redis())
            self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        try:
            asyncio.run(create_topics(self.kafka_bootstrap, self.options.partitions))
        except PartitionsMismatch as exc:
            raise StartFailed(
                f"{exc}: start with --partitions matching the existing topics, or with"
                " another data directory"
            ) from None

    def _log_starts_empty(self) -> bool:
        """Whether this stack's own broker starts from no log: Tansu on memory storage."""
        started_here = not self.options.kafka_bootstrap
        return started_here and self.options.storage == "memory" and self.options.broker == "tansu"

    def _start_broker(self, advertised_port: int | None = None) -> Child:
        assert self.broker_port is not None
        return start_chosen_broker(
            self.options.broker,
            self.broker_port,
            self.options.work_dir,
            advertised_port=advertised_port,
            store=self.object_store,
        )

    def _start_redis(self) -> Child:
        assert self.redis_port is not None
        return start_redis(
            self.redis_port,
            self.options.work_dir / "redis",
            self.log_dir,
            aof=self.options.redis_aof,
        )

    def restart_redis(self) -> None:
        """Stop the Redis this stack started (SIGTERM, so AOF is flushed) and start it again."""
        old = next(c for c in self.infra if c.name == "redis")
        old.stop()
        self.infra[self.infra.index(old)] = self._start_redis()

    def crash_redis(self) -> None:
        """kill -9 the Redis this stack started and start it again on the same port and
        data directory: what survives is what its configuration made durable."""
        old = next(c for c in self.infra if c.name == "redis")
        old.kill()
        self.infra[self.infra.index(old)] = self._start_redis()

    def kill_service(self, label: str) -> None:
        """kill -9, as a crash would."""
        self.services.pop(label).kill()

    def apply_campaigns(self, path: Path) -> int:
        entries = [(e.terms, e.effective_from) for e in load_campaign_file(path).campaigns]
        return len(asyncio.run(publish_terms(self.kafka_bootstrap, entries)))

    def service_env(self) -> dict[str, str]:
        ports = self.options.ports
        return {
            "AFFLUX_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "AFFLUX_REDIS_URL": self.redis_url,
            "AFFLUX_TOPIC_PARTITIONS": str(self.options.partitions),
            "AFFLUX_DATA_DIR": str(self.options.work_dir / "data"),
            "AFFLUX_CLICKS_PORT": str(ports["clicks"]),
            "AFFLUX_ORDERS_PORT": str(ports["orders"]),
            "AFFLUX_PAYOUTS_PORT": str(ports["payouts"]),
            "AFFLUX_ATTRIBUTION_PORT": str(ports["attribution"]),
            "AFFLUX_CLICKS_PUBLIC_URL": f"http://127.0.0.1:{ports['clicks']}",
            # GET /v1/orders/{id} on the orders service asks the ledger for the postings.
            "AFFLUX_PAYOUTS_URL": f"http://127.0.0.1:{ports['payouts']}",
            # The portal makes a creator's tracking links through the clicks links API.
            "AFFLUX_CLICKS_URL": f"http://127.0.0.1:{ports['clicks']}",
            # ... and a campaign's unattributed orders, late clicks and assists from orders.
            "AFFLUX_ORDERS_URL": f"http://127.0.0.1:{ports['orders']}",
            # The demo client plays the proxy in front of many visitors (X-Forwarded-For).
            "AFFLUX_CLICKS_TRUSTED_PROXIES": "127.0.0.1",
            **self.options.env,
        }

    def check_ports(self) -> None:
        taken = [
            f"{name} port {port}" for name, port in self.options.ports.items() if port_in_use(port)
        ]
        if taken:
            raise StartFailed(
                "already in use: "
                + ", ".join(taken)
                + " (set AFFLUX_CLICKS_PORT / AFFLUX_ORDERS_PORT / AFFLUX_PAYOUTS_PORT /"
                " AFFLUX_ATTRIBUTION_PORT, or stop what holds them)"
            )

    def start_service(
        self, name: str, *, instance: str = "", port: int | None = None, timeout_s: float = 120
    ) -> Child:
        """Start ``python -m afflux.<name>`` and wait for its /healthz; a second
        instance (``instance="-2"``) needs its own ``port``. Mostly a restart after a
        kill, while the rest of the stack carries on: twice a whole stack's start-up
        bound, as a restarted ledger on a loaded machine took more than 60 s."""
        child, port = self._spawn(name, instance, port)
        child.wait_until(partial(self._healthy_child, child, name, port), timeout_s=timeout_s)
        return child

    def start_services(self, names: Sequence[str], timeout_s: float = 60) -> None:
        """Start each of ``names`` at once, then wait for every /healthz: the services do
        not wait for one another to start, and most of a start is importing, which the
        processes do side by side."""
        started = [(name, *self._spawn(name, "", None)) for name in names]
        for name, child, port in started:
            child.wait_until(partial(self._healthy_child, child, name, port), timeout_s=timeout_s)

    def _healthy_child(self, child: Child, name: str, port: int) -> bool:
        """Healthy, and answered by ``child``: not by what took the port before it."""
        # Another's answer waits on: the child then fails to bind and exits, and
        # ``wait_until`` reports that with its log (the address in use).
        return self.healthy(name, port) and listens_on(child.pid, port)

    def _spawn(self, name: str, instance: str, port: int | None) -> tuple[Child, int]:
        label = f"{name}{instance}"
        env = self.service_env()
        if instance:
            env["AFFLUX_INSTANCE_ID"] = instance
        if port is not None:
            env[f"AFFLUX_{name.upper()}_PORT"] = str(port)
        child = Child(
            label, [sys.executable, "-m", f"afflux.{name}"], self.log_dir / f"{label}.log", env=env
        ).start()
        self.services[label] = child
        return child, port or self.options.ports[name]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.options.ports[name]}"

    def healthy(self, name: str, port: int | None = None) -> bool:
        base = f"http://127.0.0.1:{port}" if port else self.url(name)
        try:
            # A slow answer is still healthy: a service catching up on a backlog on a busy
            # machine took over a second to answer, and at 1 s it was never seen healthy.
            return oneshot.get(f"{base}/healthz", timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start_all(self) -> None:
        self.start_services(SERVICES)

    def stop(self) -> None:
        stop_together(list(self.services.values()))
        self.services.clear()
        if self.gate is not None:
            self.gate.stop()
            self.gate = None
        for child in reversed(self.infra):
            child.stop()
        self.infra.clear()
        self.object_store = None


def fresh_stack(
    work_dir: Path, admin_token: str, storage: BrokerStorage, broker: BrokerKind | None = None
) -> Stack:
    """A stack not started yet, on free ports, in ``work_dir`` emptied first, as the commands
    run it: Redis with its append-only file when the broker's storage is durable too; on
    ``broker`` when given, else on the test run's choice (``AFFLUX_TEST_BROKER``)."""
    shutil.rmtree(work_dir, ignore_errors=True)
    return Stack(
        StackOptions(
            work_dir=work_dir,
            ports={name: free_port() for name in SERVICES},
            env={"AFFLUX_ADMIN_TOKEN": admin_token},
            redis_aof=storage == "durable",
            storage=storage,
            broker=broker or broker_from_env(),
        )
    )
