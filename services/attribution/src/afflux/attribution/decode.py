"""Turning a record value into events, one item at a time, so one bad event in a
packed record does not take its neighbours with it.

Whatever fails on an item (the bounded parse of ``afflux.shared.wire``,
validation, an upcaster) makes that item a refusal with its reason and the
exception's class; nothing raised here reaches the stage.

Clicks are most of what the join stage reads, so a record of current clicks
takes a fast path (``afflux.shared.click_decode``): its bytes decode straight into
``DecodedClick`` structs, without building dicts or pydantic models (a quarter of the
worker's time did that). The fast path accepts only what ``ClickRecorded`` accepts, with
the same values: anything it refuses (an RFC 3339 time, a bad item, an older schema,
another event type) takes the general path below, which gives each item its
verdict and reason as before.
"""

from __future__ import annotations

from typing import Any

import msgspec
from pydantic import ValidationError

from afflux.shared.click_decode import DecodedClick as DecodedClick
from afflux.shared.click_decode import decoded_clicks
from afflux.shared.events import AnyEvent, ClickRecorded
from afflux.shared.wire import (
    UndecodableRecord,
    describe_refusal,
    event_from_dict,
    parse_value,
)

Event = AnyEvent | DecodedClick
# index, event (None: refused), reason, the parsed item (None when the whole value
# could not be parsed, or when the fast path decoded it: ``item_of`` finds it again),
# the refusing exception's class; a plain tuple: this is the hot path.
Item = tuple[int, Event | None, str, Any, str]


def decode_items(value: bytes | None) -> list[Item]:
    """Every item of a (packed or single) record value; a bad item carries its reason."""
    clicks = decoded_clicks(value)
    if clicks is not None:
        return [(index, click, "", None, "") for index, click in enumerate(clicks)]
    return decode_items_one_by_one(value)


def decode_items_one_by_one(value: bytes | None) -> list[Item]:
    """The general path: the value parsed to dicts, each validated as the event it names."""
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
            reason = (
                describe_refusal(exc, "ClickRecorded")
                if isinstance(exc, ValidationError)
                else f"invalid event: {exc!r}"[:2000]
            )
            out.append((index, None, reason, item, type(exc).__name__))
    return out


def item_of(value: bytes | None, index: int, event: Event) -> Any:
    """Item ``index`` of a record value the fast path decoded, as parsed JSON: what a dead
    letter of that item carries (rare, so parsed again rather than kept). Never raises:
    should the value not parse again, the event's own fields stand in."""
    try:
        parsed = parse_value(value)
        return parsed[index] if isinstance(parsed, list) else parsed
    except Exception:
        return msgspec.to_builtins(event)
