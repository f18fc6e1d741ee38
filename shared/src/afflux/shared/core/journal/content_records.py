"""A content's state as the journal stores it (one JSON value per content, in the
period of its publication): the publication, the latest snapshot, how many snapshots
became the latest and how many were stale, the review hold and the release, and the
latest snapshot not on hold (what reach and EMV show)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from afflux.shared.core.engagement import ContentState, Publication, Snapshot


def content_to_json(state: ContentState) -> dict[str, Any]:
    p, s = state.publication, state.latest
    return {
        "key": state.key,
        "pub": None if p is None else [getattr(p, name) for name in Publication.__slots__],
        "snap": None if s is None else _snapshot(s),
        "n": state.snapshots,
        "stale": state.stale,
        "held": state.held,
        "released": state.released,
        "confirmed": None if state.confirmed is None else _snapshot(state.confirmed),
    }


def _snapshot(s: Snapshot) -> list[Any]:
    return [getattr(s, name) for name in Snapshot.__slots__]


def content_from_json(data: dict[str, Any]) -> ContentState:
    state = ContentState(
        key=data["key"],
        publication=None if data["pub"] is None else Publication(*data["pub"]),
        latest=None if data["snap"] is None else Snapshot(*data["snap"]),
        snapshots=data["n"],
        stale=data["stale"],
        held=data["held"],
        released=data["released"],
    )
    if "confirmed" in data:
        confirmed = data["confirmed"]
        return replace(state, confirmed=None if confirmed is None else Snapshot(*confirmed))
    # Stored before it was kept: the latest, on hold too, as the reach counters of that
    # ledger count it (zeros here, a release then added its figures a second time).
    return replace(state, confirmed=state.latest)
