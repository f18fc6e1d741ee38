"""The gate the fault tests use to take the broker away from services without losing its log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from afflux.cli.embedded import start_broker
from afflux.cli.gate import BrokerGate
from afflux.cli.processes import free_port
from afflux.shared.io.kafka import create_topics

pytestmark = pytest.mark.integration


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[BrokerGate]:
    broker_port, gate_port = free_port(), free_port()
    broker = start_broker(broker_port, tmp_path, advertised_port=gate_port)
    gate = BrokerGate(gate_port, broker_port).start()
    try:
        asyncio.run(create_topics(f"127.0.0.1:{gate_port}", 1))
        yield gate
    finally:
        gate.stop()
        broker.stop()


async def _send(bootstrap: str, value: bytes, timeout_s: float) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await asyncio.wait_for(producer.start(), timeout_s)
        await asyncio.wait_for(producer.send_and_wait("clicks", value), timeout_s)
    finally:
        await producer.stop()


def test_cut_gate_refuses_clients_and_restore_lets_them_back(gated: BrokerGate) -> None:
    bootstrap = f"127.0.0.1:{gated.listen_port}"
    asyncio.run(_send(bootstrap, b"before", 10))

    gated.cut()
    with pytest.raises((KafkaError, TimeoutError, OSError)):
        asyncio.run(_send(bootstrap, b"during", 3))

    gated.restore()
    asyncio.run(_send(bootstrap, b"after", 10))
