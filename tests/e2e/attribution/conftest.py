"""Fault tests of the attribution worker share the integration harness and a broker per
test."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from afflux.cli.brokers import BrokerKind, start_chosen_broker
from afflux.cli.processes import free_port
from afflux.shared.io.kafka import create_topics

sys.path.insert(0, str(Path(__file__).parents[2] / "integration" / "attribution"))
sys.path.insert(0, str(Path(__file__).parent))  # worker_faults


@pytest.fixture
def broker(tmp_path: Path, broker_kind: BrokerKind) -> Iterator[str]:
    port = free_port()
    child = start_chosen_broker(broker_kind, port, tmp_path)
    try:
        bootstrap = f"127.0.0.1:{port}"
        asyncio.run(create_topics(bootstrap, 4))
        yield bootstrap
    finally:
        child.stop()
