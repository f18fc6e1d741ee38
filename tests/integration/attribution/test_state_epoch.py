"""``afflux attribution rebuild`` renews the group's state epoch, which a worker reads
before it opens its local stores: a store of an earlier epoch is emptied
(``store.StateEpoch``), never read on under the recreated changelog."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from afflux.attribution.rebuild import clear_state, read_epoch

pytestmark = pytest.mark.integration


async def test_each_rebuild_writes_a_new_epoch_and_a_group_never_rebuilt_has_none(
    infra: Any,
) -> None:
    group = f"epoch-{uuid.uuid4().hex[:8]}"
    assert await read_epoch(infra.kafka_bootstrap, group) == ""

    first = await clear_state(infra.kafka_bootstrap, group)
    read_first = await read_epoch(infra.kafka_bootstrap, group)
    second = await clear_state(infra.kafka_bootstrap, group)

    assert first.epoch
    assert read_first == first.epoch
    assert second.epoch not in ("", first.epoch)
    assert await read_epoch(infra.kafka_bootstrap, group) == second.epoch
    assert await read_epoch(infra.kafka_bootstrap, f"{group}-other") == ""
