"""Turning a record value into events, one item at a time, so one bad event in a
packed record does not take its neighbours with it."""

from __future__ import annotations

import json
from typing import Any

from afflux.shared.events import AnyEvent, ClickRecorded
from afflux.shared.wire import UndecodableRecord, event_from_dict

Item = tuple[int, AnyEvent | None, str, Any]  # index, event or None, reason, raw item


def decode_items(value: bytes | None) -> list[Item]:
    """Every item of a (packed or single) record value; a bad item carries its reason."""
    if value is None:
        return [(0, None, "empty record value (tombstone)", None)]
    try:
        parsed = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [(0, None, f"not JSON: {exc}", None)]
    items = parsed if isinstance(parsed, list) else [parsed]
    out: list[Item] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            out.append((index, None, "record must be a JSON object or an array of objects", item))
            continue
        try:
            if item.get("type") == "ClickRecorded" and item.get("schema_version", 1) == 1:
                out.append((index, ClickRecorded.model_validate(item), "", item))
            else:
                out.append((index, event_from_dict(item), "", item))
        except UndecodableRecord as exc:
            out.append((index, None, str(exc), item))
        except ValueError as exc:  # pydantic ValidationError of the fast path
            out.append((index, None, f"invalid event: {exc}", item))
    return out
