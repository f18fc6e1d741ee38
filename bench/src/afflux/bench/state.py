"""``afflux bench state [--visitors N] [--json]``: what the attribution stages hold
per active visitor and per decided order, in memory and on their changelogs.

A seeded realistic mix (the attribution benchmark's: about two clicks per
visitor, one order per ten visitors, refunds) is encoded as records, then
decoded and fed through the stages' own code (no broker) as the worker does:
every order decided, every outcome and refund handed to the refund stage.
Memory is what ``tracemalloc`` sees allocated and still held by the state;
beside it, as the baseline, the size of the same visitors' input events on
the wire. Finally the stages are pruned with horizons past every event, to
show what the retention keeps.
"""

from __future__ import annotations

import json
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from afflux.attribution.decode import DecodedClick, decode_items
from afflux.attribution.join import JoinPartition, decode_state, encode_state
from afflux.attribution.refunds import RefundPartition, decode_ledger
from afflux.attribution.store import DiskKeys, DiskStores, LocalStore
from afflux.attribution.timer_indexes import dump_indexes
from afflux.bench.attribution import realistic_mix
from afflux.cli.help_format import PlainArgumentParser
from afflux.oracle import attribute
from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.terms import TermsVersion, terms_in_force
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
)
from afflux.shared.wire import encode


def main(argv: list[str]) -> int:
    parser = PlainArgumentParser(prog="afflux bench state", description=__doc__)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--visitors", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--cache-keys", type=int, default=4096, help="the disk store's decoded-state cache"
    )
    args = parser.parse_args(argv)
    scenario = realistic_mix(args.seed, args.visitors, prefix="m")

    def terms(campaign_id: str, at_ms: int) -> TermsVersion | None:
        versions = scenario.campaigns.get(campaign_id)
        return terms_in_force(versions, at_ms) if versions else None

    joined = [encode(e) for e in scenario.events if isinstance(e, ClickRecorded | OrderPlaced)]
    refunds = [encode(e) for e in scenario.events if isinstance(e, OrderRefunded)]
    # The join's outcomes as the refund stage reads them (the worker's equal the oracle's).
    oracle = attribute(scenario.events, scenario.campaigns)
    outcomes = [
        (e.order_id, encode(e))
        for e in (*oracle.conversions, *oracle.unmatched)
        if isinstance(e, ConversionAttributed | OrderUnattributed)
    ]
    wire = sum(map(len, joined))

    join, join_bytes, refund_stage, refund_bytes = _held(joined, outcomes, refunds, terms)
    join_log = sum(len(v) for _, v in join.take_dirty() if v)
    join_keys = len(join.keys)
    refund_log = sum(len(v) for _, v in refund_stage.take_dirty() if v)
    refund_keys = len(refund_stage.keys)
    stage = refund_stage

    with tempfile.TemporaryDirectory(prefix="afflux-bench-state-") as root:
        disk = DiskStores(Path(root), args.cache_keys)
        locals_ = (disk.open(0), disk.open(1))
        disk_join, disk_join_bytes, disk_refunds, disk_refund_bytes = _held(
            joined, outcomes, refunds, terms, locals_
        )
        assert _same_keys(disk_join, join), "the disk store holds other states than memory"
        join_rocksdb = locals_[0].memory_bytes()  # a fixed cost: memtables are bounded
        for local in locals_:
            local.db.flush()
        join_disk = locals_[0].disk_bytes()
        refund_disk = locals_[1].disk_bytes()
        cached = len(disk_join.keys.cache) if isinstance(disk_join.keys, DiskKeys) else 0
        disk.close()
    del disk_refunds

    last = max(join.watermark, 0)
    join.prune(last + 1, 0, last + 1)
    join.take_dirty()  # drops the keys left empty
    stage.prune(0)
    kept_clicks = sum(len(s.clicks) for s in join.keys.values())
    result: dict[str, object] = {
        "visitors": args.visitors,
        "join_keys": join_keys,
        "join_bytes_per_key": round(join_bytes / join_keys),
        "join_changelog_bytes_per_key": round(join_log / join_keys),
        "input_wire_bytes_per_key": round(wire / join_keys),
        "refund_keys": refund_keys,
        "refund_bytes_per_key": round(refund_bytes / max(1, refund_keys)),
        "refund_changelog_bytes_per_key": round(refund_log / max(1, refund_keys)),
        "join_keys_after_prune": len(join.keys),
        "clicks_after_prune": kept_clicks,
        "refund_keys_after_prune": len(stage.keys),
        "disk_join_ram_bytes_per_key": round(disk_join_bytes / join_keys),
        "disk_join_rocksdb_ram_bytes_per_key": round(join_rocksdb / join_keys),
        "disk_join_disk_bytes_per_key": round(join_disk / join_keys),
        "disk_refund_ram_bytes_per_key": round(disk_refund_bytes / max(1, refund_keys)),
        "disk_refund_disk_bytes_per_key": round(refund_disk / max(1, refund_keys)),
        "disk_cache_keys": args.cache_keys,
        "disk_cached_states": cached,
    }
    value = round(disk_join_bytes / join_keys)
    baseline = round(join_bytes / join_keys)
    result = {
        "bench": "state",
        "value": value,
        "unit": "bytes in RAM per active visitor (disk store)",
        "baseline": baseline,
        "ratio": round(value / max(1, baseline), 3),
        **result,
    }
    print(
        f"join: {join_keys:,} keys (visitors, or orders without one); per key "
        f"{result['join_bytes_per_key']:,} bytes in memory, "
        f"{result['join_changelog_bytes_per_key']:,} on the changelog; "
        f"their input events: {result['input_wire_bytes_per_key']:,} bytes on the wire"
    )
    print(
        f"refunds: {refund_keys:,} decided orders; per order "
        f"{result['refund_bytes_per_key']:,} bytes in memory, "
        f"{result['refund_changelog_bytes_per_key']:,} on the changelog"
    )
    print(
        f"disk store (RocksDB, cache of {args.cache_keys:,} decoded states per partition): "
        f"per join key {value:,} bytes in Python's heap (baseline, the memory store: "
        f"{baseline:,}; ratio {result['ratio']}), "
        f"{result['disk_join_rocksdb_ram_bytes_per_key']:,} in RocksDB's memtables, "
        f"{result['disk_join_disk_bytes_per_key']:,} on disk; per decided order in the "
        f"refund stage {result['disk_refund_ram_bytes_per_key']:,} bytes in the heap, "
        f"{result['disk_refund_disk_bytes_per_key']:,} on disk"
    )
    print(
        f"pruned past every click: {len(join.keys):,} join keys left (decided orders kept "
        f"for deduplication), {kept_clicks} clicks; refund stage kept {len(stage.keys):,}"
        f" orders (within the order retention)"
    )
    if args.json:
        print(json.dumps(result))
    return 0


Terms = Callable[[str, int], TermsVersion | None]
FLUSH_EVERY = 200  # events per input record, as the benchmarks pack them
CHECKPOINT_KEYS = 50_000


def _held(
    joined: list[bytes],
    outcomes: list[tuple[str, bytes]],
    refunds: list[bytes],
    terms: Terms,
    stores: tuple[LocalStore, LocalStore] | None = None,
) -> tuple[JoinPartition, int, RefundPartition, int]:
    """Both stages fed as the worker feeds them, and the bytes each still holds in Python's
    heap (``tracemalloc``): on disk, flushed every record and checkpointed as the worker
    does, so what stays is the cache, the timer indexes and the last checkpoint's change."""
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    join = JoinPartition(keys=stores[0].bind(decode_state) if stores else None)
    last = 0
    for n, value in enumerate(joined, 1):
        for _, event, _, _, _ in decode_items(value):
            last = max(last, event.occurred_at if event else 0)
            if isinstance(event, DecodedClick | ClickRecorded):
                join.click(event.visitor_id, event, event.occurred_at, terms)
            elif isinstance(event, OrderPlaced):
                key = order_partition_key(event.order_id, event.visitor_id, event.click_id)
                join.order(key, event, event.occurred_at)
        if stores and n % FLUSH_EVERY == 0:
            _flush(join, stores[0], n)
    join.due(last + 60_000, terms)  # outputs are sent and dropped, the decisions stay
    if stores:
        _flush(join, stores[0], len(joined), checkpoint=True)
    join_bytes = tracemalloc.get_traced_memory()[0] - start

    start = tracemalloc.get_traced_memory()[0]
    stage = RefundPartition(keys=stores[1].bind(decode_ledger) if stores else None)
    for n, (key, value) in enumerate(outcomes, 1):
        for _, outcome, _, _, _ in decode_items(value):
            if isinstance(outcome, ConversionAttributed):
                stage.conversion(key, outcome)
            elif isinstance(outcome, OrderUnattributed):
                stage.unattributed(key, outcome)
        if stores and n % FLUSH_EVERY == 0:
            _flush(stage, stores[1], n)
    for value in refunds:
        for _, event, _, _, _ in decode_items(value):
            if isinstance(event, OrderRefunded):
                stage.refund(event.order_id, event, last)
    if stores:
        _flush(stage, stores[1], len(outcomes) + len(refunds), checkpoint=True)
    refund_bytes = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    return join, join_bytes, stage, refund_bytes


def _flush(
    state: JoinPartition | RefundPartition, local: LocalStore, n: int, checkpoint: bool = False
) -> None:
    keys = local.keys
    assert keys is not None
    keys.written(state.take_dirty())
    if checkpoint or len(keys.overlay) >= CHECKPOINT_KEYS:
        local.checkpoint(n, dump_indexes(state))


def _same_keys(disk: JoinPartition, memory: JoinPartition) -> bool:
    """A sample of the disk store's states equals the memory store's."""
    sample = sorted(memory.keys)[:: max(1, len(memory.keys) // 500)]
    return all(encode_state(disk.keys[key]) == encode_state(memory.keys[key]) for key in sample)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
