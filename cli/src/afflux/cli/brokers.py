"""Which broker afflux starts: the embedded Tansu (default, no Java) or Apache Kafka
(the production broker, from ``deploy/kafka``); the choice ``--broker`` offers, and that
the test suite takes from ``AFFLUX_TEST_BROKER``."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, cast

from afflux.cli.embedded import start_broker, start_embedded_broker
from afflux.cli.object_store import ObjectStore
from afflux.cli.processes import Child, free_port
from afflux.cli.storage import BrokerStorage
from afflux.shared.io.kafka import create_topics

BrokerKind = Literal["tansu", "kafka"]
BROKERS: tuple[BrokerKind, ...] = ("tansu", "kafka")
DEFAULT_BROKER: BrokerKind = "tansu"
# Set by ``scripts/test --broker kafka``: the session broker, the attribution and fault
# tests' private brokers and every Stack built without an explicit broker use it.
TEST_BROKER_VARIABLE = "AFFLUX_TEST_BROKER"


def add_broker_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--broker",
        choices=BROKERS,
        default=DEFAULT_BROKER,
        help="tansu (embedded, the default) or kafka (Apache Kafka from Maven Central; "
        "needs Java, and Maven on first use)",
    )


def broker_of(args: argparse.Namespace) -> BrokerKind:
    return cast(BrokerKind, args.broker)


def broker_from_env() -> BrokerKind:
    """``AFFLUX_TEST_BROKER`` (tansu or kafka), tansu when unset."""
    value = os.environ.get(TEST_BROKER_VARIABLE, "").strip() or DEFAULT_BROKER
    if value not in BROKERS:
        raise ValueError(f"{TEST_BROKER_VARIABLE}={value!r}: choose one of {', '.join(BROKERS)}")
    return value


def kafka_data_dir(work_dir: Path) -> Path:
    return work_dir / "kafka"


def start_chosen_broker(
    kind: BrokerKind,
    port: int,
    work_dir: Path,
    *,
    advertised_port: int | None = None,
    store: ObjectStore | None = None,
) -> Child:
    """Start ``kind`` on ``port``; logs under ``work_dir/logs``. Kafka keeps its log in
    ``work_dir/kafka`` (reused by a restart on the same ``work_dir``); Tansu in ``store``,
    or in memory without one."""
    log_dir = work_dir / "logs"
    if kind == "kafka":
        from afflux.cli.kafka_broker import start_kafka

        return start_kafka(port, kafka_data_dir(work_dir), log_dir, advertised_port=advertised_port)
    return start_broker(port, log_dir, advertised_port=advertised_port, store=store)


@contextmanager
def broker_with_topics(kind: BrokerKind, work_dir: Path, partitions: int) -> Iterator[str]:
    """``kind`` on a free loopback port with afflux's topics of ``partitions``, for as long
    as the block runs (stopped however it ends); yields its bootstrap address. A broker
    of one's own, where a consumer reading whole topics must not see others' records."""
    port = free_port()
    broker = start_chosen_broker(kind, port, work_dir)
    try:
        bootstrap = f"127.0.0.1:{port}"
        asyncio.run(create_topics(bootstrap, partitions))
        yield bootstrap
    finally:
        broker.stop()


def start_broker_on_storage(
    kind: BrokerKind, port: int, work_dir: Path, storage: BrokerStorage
) -> list[Child]:
    """``kind`` on ``port`` as a command runs it: Tansu on ``storage`` (durable: its object
    store under ``work_dir`` too), Kafka on its own disk log (``storage`` does not apply).
    Stop the returned children in reverse order; the broker is the last one."""
    if kind == "kafka":
        return [start_chosen_broker(kind, port, work_dir)]
    return start_embedded_broker(port, work_dir, storage)
