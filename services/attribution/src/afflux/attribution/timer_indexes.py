"""The in-memory indexes a stage partition keeps beside its per-key state (the join's
pending orders by arrival and order -> key index, the refunds' keys with waiting
refunds), encoded for the disk store's checkpoints: recovery from the local store reads
them instead of decoding every key."""

from __future__ import annotations

import heapq
import json

from afflux.attribution.join import JoinPartition
from afflux.attribution.refunds import RefundPartition


def dump_indexes(state: object) -> bytes:
    if isinstance(state, JoinPartition):
        doc: dict[str, object] = {
            # Orders waiting for a known deadline (``later``) are pending orders too: a
            # recovery queues them by arrival, and the next tick sorts them again.
            "q": [
                *([arrived, key, c, o] for arrived, key, (c, o) in state.queue),
                *([arrived, key, c, o] for _, arrived, key, (c, o) in state.later),
            ],
            "i": [[c, o, key] for (c, o), key in state.index.items()],
        }
    elif isinstance(state, RefundPartition):
        doc = {"w": sorted(state.waiting)}
    else:
        raise TypeError(f"no indexes known for {type(state).__name__}")
    return json.dumps(doc, separators=(",", ":")).encode()


def load_indexes(state: object, raw: bytes) -> None:
    doc = json.loads(raw)
    if isinstance(state, JoinPartition):
        state.queue = [(arrived, key, (c, o)) for arrived, key, c, o in doc["q"]]
        heapq.heapify(state.queue)
        state.later = []
        state.index = {(c, o): key for c, o, key in doc["i"]}
    elif isinstance(state, RefundPartition):
        state.waiting = set(doc["w"])
    else:
        raise TypeError(f"no indexes known for {type(state).__name__}")
