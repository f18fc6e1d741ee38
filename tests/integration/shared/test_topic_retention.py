"""The topic job's topics on a real broker: input topics with the retention asked for
(forever by default), the others with the broker's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from afflux.cli.brokers import BrokerKind, start_chosen_broker
from afflux.cli.processes import free_port
from afflux.shared.io.kafka import create_topics
from afflux.shared.topics import ALL_TOPICS

pytestmark = pytest.mark.integration

INPUTS = {"clicks", "orders", "refunds", "campaigns", "content", "reviews"}
# The attribution's answers the ledger rebuild replays, and the payouts the ledger writes
# back from after Redis lost them: kept as long as the inputs.
KEPT = {"conversions", "reversals", "attribution.unmatched", "payouts"}
NINETY_DAYS_MS = 90 * 86_400_000


async def _configs(bootstrap: str) -> dict[str, dict[str, str]]:
    """Each afflux topic's configs as the broker describes them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        answers = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in ALL_TOPICS]
        )
    finally:
        await admin.close()
    return {
        # (error code, error message, resource type, resource name, config entries, ...)
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for answer in answers
        for resource in answer.resources
    }


@pytest.fixture
def private_broker(tmp_path: Path, broker_kind: BrokerKind) -> Iterator[str]:
    port = free_port()
    broker = start_chosen_broker(broker_kind, port, tmp_path)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        broker.stop()


async def test_input_topics_are_kept_forever_by_default(infra: Any) -> None:
    configs = await _configs(infra.kafka_bootstrap)
    for name in INPUTS:
        assert configs[name]["retention.ms"] == "-1", name


async def test_the_configured_input_retention_reaches_the_broker(private_broker: str) -> None:
    created = await create_topics(private_broker, 2, NINETY_DAYS_MS)
    assert sorted(created) == sorted(t.name for t in ALL_TOPICS)
    configs = await _configs(private_broker)
    for name in INPUTS:
        assert configs[name]["retention.ms"] == str(NINETY_DAYS_MS), name
    for name in KEPT:
        assert configs[name]["retention.ms"] == str(NINETY_DAYS_MS), name
    for name in {t.name for t in ALL_TOPICS} - INPUTS - KEPT:
        assert configs[name].get("retention.ms") != str(NINETY_DAYS_MS), name
    assert configs["campaigns"]["cleanup.policy"] == "compact"
    assert configs["links"]["cleanup.policy"] == "compact"


async def test_an_existing_topic_keeps_its_configuration(private_broker: str) -> None:
    await create_topics(private_broker, 2, NINETY_DAYS_MS)
    assert await create_topics(private_broker, 2) == []
    configs = await _configs(private_broker)
    assert configs["clicks"]["retention.ms"] == str(NINETY_DAYS_MS)
