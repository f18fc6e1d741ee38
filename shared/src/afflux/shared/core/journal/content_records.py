"""A content's state as the journal stores it (one JSON value per content, in the
period of its publication): the publication, the latest snapshot, how many snapshots
became the latest and how many were stale, the review hold and the release."""

from __future__ import annotations

from typing import Any

from afflux.shared.core.engagement import ContentState, Publication, Snapshot


def content_to_json(state: ContentState) -> dict[str, Any]:
    p, s = state.publication, state.latest
    return {
        "key": state.key,
        "pub": None if p is None else [getattr(p, name) for name in Publication.__slots__],
        "snap": None if s is None else [getattr(s, name) for name in Snapshot.__slots__],
        "n": state.snapshots,
        "stale": state.stale,
        "held": state.held,
        "released": state.released,
    }


def content_from_json(data: dict[str, Any]) -> ContentState:
    return ContentState(
        key=data["key"],
        publication=None if data["pub"] is None else Publication(*data["pub"]),
        latest=None if data["snap"] is None else Snapshot(*data["snap"]),
        snapshots=data["n"],
        stale=data["stale"],
        held=data["held"],
        released=data["released"],
    )
