"""Records of clicks decoded straight into structs, without dicts or pydantic models.

Clicks are most of what the attribution worker and the ledger read: validating each as
a ``ClickRecorded`` model cost a quarter of the worker's time. ``decoded_clicks`` accepts
only what ``ClickRecorded`` accepts, with the same values and defaults, and only records
whose every item is a current click (schema 1, integer event time); for anything else
it answers None and the reader takes its general path, which gives each item its
verdict and reason (tests/unit/attribution/test_decode_fast_clicks.py holds the two
paths equal)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from afflux.shared.core.click_flags import click_flagged, legacy_flags
from afflux.shared.core.clock import MAX_EVENT_TIME_MS
from afflux.shared.events import (
    MAX_CLICK_AGENT,
    MAX_CLICK_PARAM_NAME,
    MAX_CLICK_PARAM_VALUE,
    MAX_CLICK_PARAMS,
    MAX_CLICK_REFERRER,
)
from afflux.shared.wire import MAX_PACKED_EVENTS, UndecodableRecord, check_bounds

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# ClickRecorded's flag pattern, ending in \Z: Python's $ also matches before a final
# newline, which the model's pattern refuses.
_Flag = Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,32}\Z")]
CLICK_TYPE = b'"ClickRecorded"'  # in every value the fast path can take
_Params = Annotated[
    dict[
        Annotated[str, msgspec.Meta(max_length=MAX_CLICK_PARAM_NAME)],
        Annotated[str, msgspec.Meta(max_length=MAX_CLICK_PARAM_VALUE)],
    ],
    msgspec.Meta(max_length=MAX_CLICK_PARAMS),
]


class DecodedClick(msgspec.Struct, frozen=True, gc=False):
    """A ``ClickRecorded`` (schema 1, integer event time) decoded by the fast path: the
    same fields, values and defaults, and the same ``reasons`` and ``flagged``."""

    event_id: _Id
    occurred_at: Annotated[int, msgspec.Meta(ge=0, le=MAX_EVENT_TIME_MS)]
    click_id: _Id
    link_code: _Id
    affiliate_id: _Id
    campaign_id: _Id
    visitor_id: _Id
    type: Literal["ClickRecorded"]
    schema_version: Literal[1] = 1
    ip_hash: Annotated[str, msgspec.Meta(max_length=128)] = ""
    user_agent: Annotated[str, msgspec.Meta(max_length=MAX_CLICK_AGENT)] = ""
    ua_family: Annotated[str, msgspec.Meta(max_length=MAX_CLICK_AGENT)] = ""
    ua_version: Annotated[str, msgspec.Meta(max_length=MAX_CLICK_AGENT)] = ""
    referrer: Annotated[str, msgspec.Meta(max_length=MAX_CLICK_REFERRER)] | None = None
    sub_ids: _Params = {}
    utm: _Params = {}
    is_bot: bool = False
    is_duplicate: bool = False
    flags: Annotated[tuple[_Flag, ...], msgspec.Meta(max_length=8)] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.flags or legacy_flags(self.is_bot, self.is_duplicate)

    @property
    def flagged(self) -> bool:
        return click_flagged(self.is_bot, self.is_duplicate, self.flags)


_CLICKS = msgspec.json.Decoder(list[DecodedClick] | DecodedClick)


def decoded_clicks(value: bytes | None) -> list[DecodedClick] | None:
    """The record's clicks when every item is a click the fast path accepts, else None
    (within the bounds every record value is parsed under)."""
    if value is None or CLICK_TYPE not in value:
        return None
    try:
        check_bounds(value)
        decoded = _CLICKS.decode(value)
    except (UndecodableRecord, msgspec.DecodeError):
        return None
    if isinstance(decoded, DecodedClick):
        return [decoded]
    # Past the bound the general path refuses the record whole (``parse_value``).
    return decoded if len(decoded) <= MAX_PACKED_EVENTS else None
