"""Turning a record value into events, one item at a time, so one bad event in a
packed record does not take its neighbours with it.

Whatever fails on an item (the bounded parse of ``afflux.shared.wire``,
validation, an upcaster) makes that item a refusal with its reason and the
exception's class; nothing raised here reaches the stage.

Clicks are most of what the join stage reads, so a record of current clicks
takes a fast path: its bytes decode straight into ``DecodedClick`` structs,
without building dicts or pydantic models (a quarter of the worker's time did
that). The fast path accepts only what ``ClickRecorded`` accepts, with the same
values: anything it refuses (an RFC 3339 time, a bad item, an older schema,
another event type) takes the general path below, which gives each item its
verdict and reason as before.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from pydantic import ValidationError

from afflux.shared.core.click_flags import click_flagged
from afflux.shared.events import AnyEvent, ClickRecorded
from afflux.shared.wire import (
    UndecodableRecord,
    check_bounds,
    describe_refusal,
    event_from_dict,
    parse_value,
)

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# ClickRecorded's flag pattern, ending in \Z: Python's $ also matches before a final
# newline, which the model's pattern refuses.
_Flag = Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,32}\Z")]


class DecodedClick(msgspec.Struct, frozen=True, gc=False):
    """A ``ClickRecorded`` (schema 1, integer event time) decoded by the fast path: the
    same fields, values and defaults; the join reads either (``join.Click``)."""

    event_id: _Id
    occurred_at: Annotated[int, msgspec.Meta(ge=0)]
    click_id: _Id
    link_code: _Id
    affiliate_id: _Id
    campaign_id: _Id
    visitor_id: _Id
    type: Literal["ClickRecorded"]
    schema_version: Literal[1] = 1
    ip_hash: str = ""
    user_agent: str = ""
    ua_family: str = ""
    ua_version: str = ""
    referrer: str | None = None
    sub_ids: dict[str, str] = {}
    utm: dict[str, str] = {}
    is_bot: bool = False
    is_duplicate: bool = False
    flags: Annotated[tuple[_Flag, ...], msgspec.Meta(max_length=8)] = ()

    @property
    def flagged(self) -> bool:
        return click_flagged(self.is_bot, self.is_duplicate, self.flags)


Event = AnyEvent | DecodedClick
# index, event (None: refused), reason, the parsed item (None when the whole value
# could not be parsed, or when the fast path decoded it: ``item_of`` finds it again),
# the refusing exception's class; a plain tuple: this is the hot path.
Item = tuple[int, Event | None, str, Any, str]

_CLICKS = msgspec.json.Decoder(list[DecodedClick] | DecodedClick)
_CLICK_TYPE = b'"ClickRecorded"'


def decode_items(value: bytes | None) -> list[Item]:
    """Every item of a (packed or single) record value; a bad item carries its reason."""
    if value is not None and _CLICK_TYPE in value:
        clicks = _decoded_clicks(value)
        if clicks is not None:
            return [(index, click, "", None, "") for index, click in enumerate(clicks)]
    return decode_items_one_by_one(value)


def _decoded_clicks(value: bytes) -> list[DecodedClick] | None:
    """The record's clicks when every item is a click the fast path accepts, else None."""
    try:
        check_bounds(value)
        decoded = _CLICKS.decode(value)
    except (UndecodableRecord, msgspec.DecodeError):
        return None
    return [decoded] if isinstance(decoded, DecodedClick) else decoded


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
