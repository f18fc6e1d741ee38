"""Fault tests of the attribution worker share the integration harness and a broker per
test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from afflux.cli.brokers import BrokerKind, broker_with_topics

sys.path.insert(0, str(Path(__file__).parents[2] / "integration" / "attribution"))
sys.path.insert(0, str(Path(__file__).parent))  # worker_faults


@pytest.fixture
def broker(tmp_path: Path, broker_kind: BrokerKind) -> Iterator[str]:
    with broker_with_topics(broker_kind, tmp_path, 4) as bootstrap:
        yield bootstrap
