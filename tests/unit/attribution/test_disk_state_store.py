"""The disk state store (store.py) gives the stages the same answers as the in-memory
one, whatever its cache size, and a reopened store holds what its last checkpoint wrote."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from afflux.attribution.join import JoinPartition, Output, decode_state, encode_state
from afflux.attribution.refunds import RefundPartition, decode_ledger
from afflux.attribution.store import (
    MAX_STORE_AGE_S,
    WRITTEN_AT_KEY,
    DiskKeys,
    DiskStores,
    StateEpoch,
)
from afflux.attribution.timer_indexes import dump_indexes, load_indexes
from afflux.oracle import generate
from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.terms import TermsVersion, terms_in_force
from afflux.shared.events import ClickRecorded, OrderPlaced, OrderRefunded

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    cache_size: int
    batch: int  # events between two flushes (take_dirty)


CASES = [
    Case(16, 1),  # a cache far smaller than the keys, a flush per event
    Case(16, 50),  # many keys loaded and evicted between flushes
    Case(100_000, 50),  # everything fits: the cache alone answers
]


def _feed(join: JoinPartition, stores: DiskKeys[Any] | None, batch: int) -> list[Output]:
    scenario = generate(7, visitors=300, grace_seconds=1, prefix="u")

    def terms(campaign_id: str, at_ms: int) -> TermsVersion | None:
        versions = scenario.campaigns.get(campaign_id)
        return terms_in_force(versions, at_ms) if versions else None

    out: list[Output] = []
    for n, event in enumerate(scenario.events, 1):
        if isinstance(event, ClickRecorded):
            out += join.click(event.visitor_id, event, event.occurred_at, terms).outputs
        elif isinstance(event, OrderPlaced):
            key = order_partition_key(event.order_id, event.visitor_id, event.click_id)
            join.order(key, event, event.occurred_at)
            out += join.due(event.occurred_at - 500, terms)
        if n % batch == 0:
            items = join.take_dirty()
            if stores is not None:
                stores.written(items)
    out += join.due(2**62, terms)
    items = join.take_dirty()
    if stores is not None:
        stores.written(items)
    return out


def _snapshot(join: JoinPartition) -> dict[str, bytes]:
    return {key: encode_state(join.keys[key]) for key in sorted(join.keys)}


@pytest.mark.parametrize("case", CASES)
def test_the_join_decides_the_same_on_disk_as_in_memory(tmp_path: Path, case: Case) -> None:
    memory = JoinPartition()
    expected = _feed(memory, None, case.batch)
    assert len(expected) > 20
    local = DiskStores(tmp_path, case.cache_size).open(0)
    keys = local.bind(decode_state)
    disk = JoinPartition(keys=keys)
    got = _feed(disk, keys, case.batch)
    assert [(t, k, e.event_id) for t, k, e in got] == [(t, k, e.event_id) for t, k, e in expected]
    assert len(keys.cache) <= case.cache_size
    assert _snapshot(disk) == _snapshot(memory)


def test_a_reopened_store_holds_the_last_checkpoint(tmp_path: Path) -> None:
    stores = DiskStores(tmp_path, 16)
    local = stores.open(0)
    keys = local.bind(decode_state)
    join = JoinPartition(keys=keys)
    _feed(join, keys, 10)
    local.checkpoint(1234, dump_indexes(join))
    before, index = _snapshot(join), dict(join.index)
    stores.close()

    again = DiskStores(tmp_path, 16).open(0)
    assert again.marker() == 1234
    restored = JoinPartition(keys=again.bind(decode_state))
    raw = again.get(b"\x00\x00indexes")
    assert raw is not None
    load_indexes(restored, raw)
    assert _snapshot(restored) == before
    assert restored.index == index


def test_pruning_on_disk_visits_every_key_over_several_passes(tmp_path: Path) -> None:
    local = DiskStores(tmp_path, 16).open(0)
    keys = local.bind(decode_ledger)
    keys.sweep_size = 7
    refunds = RefundPartition(keys=keys)
    scenario = generate(3, visitors=200, prefix="p")
    for event in scenario.events:
        if isinstance(event, OrderRefunded):
            refunds.refund(event.order_id, event, 0)
    refunds.due(10**15, 0)  # every waiting refund settles as unmatched
    keys.written(refunds.take_dirty())
    local.checkpoint(1, dump_indexes(refunds))
    total = len(list(keys))
    assert total > 7
    passes = 0
    while list(keys):
        refunds.prune(10**15)
        keys.written(refunds.take_dirty())
        local.checkpoint(1, dump_indexes(refunds))
        passes += 1
        assert passes <= total  # each pass forgets some
    assert passes >= total // 7


@dataclass(frozen=True)
class AgeCase:
    age_s: float
    kept: bool


AGES = [
    AgeCase(60, True),  # a restart: the store is read
    AgeCase(MAX_STORE_AGE_S - 60, True),  # just within the age
    AgeCase(MAX_STORE_AGE_S + 60, False),  # older: tombstones it missed may be compacted away
]


@pytest.mark.parametrize("case", AGES)
def test_a_store_older_than_its_age_limit_is_emptied(tmp_path: Path, case: AgeCase) -> None:
    local = DiskStores(tmp_path, 16).open(0)
    keys = local.bind(decode_state)
    join = JoinPartition(keys=keys)
    _feed(join, keys, 10)
    local.checkpoint(77, dump_indexes(join))
    local.db.put(WRITTEN_AT_KEY, str(time.time() - case.age_s).encode())
    assert local.marker() == (77 if case.kept else None)
    assert bool(list(local.bind(decode_state))) is case.kept


def test_a_store_of_another_state_epoch_is_emptied(tmp_path: Path) -> None:
    """After ``afflux attribution rebuild`` the recreated changelog grows past an old
    store's offset: a worker that kept its directory read the new changelog from there, on
    top of the old database, and refunds of converted orders came out unmatched."""
    before = StateEpoch("")  # a store written before any rebuild
    local = DiskStores(tmp_path, 16, epoch=before).open(0)
    keys = local.bind(decode_state)
    join = JoinPartition(keys=keys)
    _feed(join, keys, 10)
    local.checkpoint(77, dump_indexes(join))
    local.close()

    same = DiskStores(tmp_path, 16, epoch=StateEpoch("")).open(0)
    assert same.marker() == 77
    same.close()
    rebuilt = DiskStores(tmp_path, 16, epoch=StateEpoch("3f2a")).open(0)
    assert rebuilt.marker() is None
    assert list(rebuilt.bind(decode_state)) == []


def test_a_corrupt_store_is_emptied_and_read_again_from_the_changelog(tmp_path: Path) -> None:
    """It raised at open, and the stage's partitions on the worker stayed unrecovered
    until someone deleted the directory."""
    local = DiskStores(tmp_path, 16).open(0)
    keys = local.bind(decode_state)
    join = JoinPartition(keys=keys)
    _feed(join, keys, 10)
    local.checkpoint(77, dump_indexes(join))
    local.close()
    (tmp_path / "0" / "CURRENT").write_text("")

    reopened = DiskStores(tmp_path, 16).open(0)

    assert reopened.marker() is None
    assert list(reopened.bind(decode_state)) == []


def test_a_store_another_holder_has_open_is_refused_not_emptied(tmp_path: Path) -> None:
    first = DiskStores(tmp_path, 16).open(0)
    first.checkpoint(5, b"")

    with pytest.raises(Exception, match="lock"):
        DiskStores(tmp_path, 16).open(0)

    assert first.marker() == 5
