"""A private broker per module: the worker consumes whole topics, so tests here own them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from afflux.cli.brokers import BrokerKind, start_chosen_broker
from afflux.cli.processes import free_port
from afflux.shared.io.kafka import create_topics

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def private_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_kind: BrokerKind
) -> Iterator[tuple[str, Path]]:
    work = tmp_path_factory.mktemp("attribution")
    port = free_port()
    broker = start_chosen_broker(broker_kind, port, work)
    try:
        bootstrap = f"127.0.0.1:{port}"
        asyncio.run(create_topics(bootstrap, 4))
        yield bootstrap, work
    finally:
        broker.stop()
