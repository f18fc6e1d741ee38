"""A private broker per module: the worker consumes whole topics, so tests here own them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.fixtures import SubRequest

from afflux.cli.brokers import BrokerKind, broker_with_topics

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))  # log_holes


@pytest.fixture(scope="module")
def private_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_kind: BrokerKind
) -> Iterator[tuple[str, Path]]:
    work = tmp_path_factory.mktemp("attribution")
    with broker_with_topics(broker_kind, work, 4) as bootstrap:
        yield bootstrap, work


# The stages' state stores (AFFLUX_STATE_STORE): the oracle and fault tests run with each.
STATE_STORES = ("memory", "disk")


@pytest.fixture(scope="module", params=STATE_STORES)
def state_store(request: SubRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def store_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_kind: BrokerKind, state_store: str
) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """A private broker per state store (outputs of one store's run never count for the
    other's), and the worker environment that selects the store."""
    work = tmp_path_factory.mktemp(f"attribution-{state_store}")
    with broker_with_topics(broker_kind, work, 4) as bootstrap:
        yield bootstrap, work, {"AFFLUX_STATE_STORE": state_store}
