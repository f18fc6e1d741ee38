"""Topics that exist with another partition count than afflux is configured for are
refused before anything runs on them: keys are co-partitioned across topics, and topics
made by hand with other counts killed the attribution worker's stages a minute after it
started ("changelog did not answer"), or left refunds unapplied while the ledger paid."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from afflux.shared.io.kafka import PartitionsMismatch, create_topics, partition_mismatches

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]


def test_topics_of_the_configured_count_pass(infra: Any) -> None:
    assert asyncio.run(partition_mismatches(infra.kafka_bootstrap, infra.partitions)) == []


def test_the_topic_job_names_every_topic_of_another_count(infra: Any) -> None:
    other = infra.partitions + 2
    with pytest.raises(PartitionsMismatch) as refused:
        asyncio.run(create_topics(infra.kafka_bootstrap, other))

    said = str(refused.value)
    assert f"topic clicks has {infra.partitions} partitions, afflux expects {other}" in said
    assert f"topic conversions has {infra.partitions} partitions" in said
    assert f"AFFLUX_TOPIC_PARTITIONS={other}" in said


def test_the_attribution_worker_refuses_to_start_on_them(infra: Any) -> None:
    env = {
        **os.environ,
        "AFFLUX_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "AFFLUX_TOPIC_PARTITIONS": str(infra.partitions + 2),
    }
    done = subprocess.run(
        [sys.executable, "-m", "afflux.attribution"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2, done.stderr
    assert "afflux attribution: topic clicks has" in done.stderr
