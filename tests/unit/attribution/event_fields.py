"""An event's fields, whichever decoding path made it (a model or a ``DecodedClick``)."""

from __future__ import annotations

from typing import Any

import msgspec

from afflux.attribution.decode import DecodedClick, Event


def fields(event: Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    if isinstance(event, DecodedClick):
        return msgspec.structs.asdict(event)
    return event.model_dump()
