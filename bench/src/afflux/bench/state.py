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
import tracemalloc

from afflux.attribution.decode import decode_items
from afflux.attribution.join import JoinPartition
from afflux.attribution.refunds import RefundPartition
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

    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    join = JoinPartition()
    last = 0
    for value in joined:
        for _, event, _, _, _ in decode_items(value):
            last = max(last, event.occurred_at if event else 0)
            if isinstance(event, ClickRecorded):
                join.click(event.visitor_id, event, event.occurred_at, terms)
            elif isinstance(event, OrderPlaced):
                key = order_partition_key(event.order_id, event.visitor_id, event.click_id)
                join.order(key, event, event.occurred_at)
    join.due(last + 60_000, terms)  # outputs are sent and dropped, the decisions stay
    join_bytes = tracemalloc.get_traced_memory()[0] - start

    start = tracemalloc.get_traced_memory()[0]
    stage = RefundPartition()
    for key, value in outcomes:
        for _, outcome, _, _, _ in decode_items(value):
            if isinstance(outcome, ConversionAttributed):
                stage.conversion(key, outcome)
            elif isinstance(outcome, OrderUnattributed):
                stage.unattributed(key, outcome)
    for value in refunds:
        for _, event, _, _, _ in decode_items(value):
            if isinstance(event, OrderRefunded):
                stage.refund(event.order_id, event, last)
    refund_bytes = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    join_log = sum(len(v) for _, v in join.take_dirty() if v)
    join_keys = len(join.keys)
    refund_log = sum(len(v) for _, v in stage.take_dirty() if v)
    refund_keys = len(stage.keys)

    join.prune(last + 1, 0, last + 1)
    join.take_dirty()  # drops the keys left empty
    stage.prune(0)
    kept_clicks = sum(len(s.clicks) for s in join.keys.values())
    result = {
        "bench": "state",
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
        f"pruned past every click: {len(join.keys):,} join keys left (decided orders kept "
        f"for deduplication), {kept_clicks} clicks; refund stage kept {len(stage.keys):,}"
        f" orders (within the order retention)"
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
