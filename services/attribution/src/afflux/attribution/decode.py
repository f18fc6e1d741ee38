"""Turning a record value into events, one item at a time, so one bad event in a
packed record does not take its neighbours with it.

Whatever fails on an item (the bounded parse of ``afflux.shared.wire``,
validation, an upcaster) makes that item a refusal with its reason and the
exception's class; nothing raised here reaches the stage.
"""

from __future__ import annotations

from typing import Any

from afflux.shared.events import AnyEvent, ClickRecorded
from afflux.shared.wire import UndecodableRecord, event_from_dict, parse_value

# index, event (None: refused), reason, the parsed item (None when the whole value
# could not be parsed), the refusing exception's class; a plain tuple: this is the hot path.
Item = tuple[int, AnyEvent | None, str, Any, str]


def decode_items(value: bytes | None) -> list[Item]:
    """Every item of a (packed or single) record value; a bad item carries its reason."""
    try:
        parsed = parse_value(value)
    except UndecodableRecord as exc:
        return [(0, None, str(exc), None, exc.error_class)]
    items = parsed if isinstance(parsed, list) else [parsed]
    out: list[Item] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            reason = "record must be a JSON object or an array of objects"
            out.append((index, None, reason, item, "UndecodableRecord"))
            continue
        try:
            if item.get("type") == "ClickRecorded" and item.get("schema_version", 1) == 1:
                out.append((index, ClickRecorded.model_validate(item), "", item, ""))
            else:
                out.append((index, event_from_dict(item), "", item, ""))
        except UndecodableRecord as exc:
            out.append((index, None, str(exc), item, exc.error_class))
        except Exception as exc:  # the fast path's ValidationError, or worse
            reason = f"invalid event: {exc}"[:2000]
            out.append((index, None, reason, item, type(exc).__name__))
    return out
