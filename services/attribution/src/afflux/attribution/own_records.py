"""Records this worker wrote to a topic it also reads, remembered by their value.

The refund stage reads back what the join wrote (conversions, unattributed orders) and
what it wrote itself (unmatched refunds), usually seconds later in the same process:
decoding them again was about a twentieth of the worker's CPU (JSON parse and pydantic
validation of every conversion). A record value equal, byte for byte, to one the worker
encoded decodes to the events it was encoded from, so those events are handed back
instead (``take``). A value not found here (another worker's, a redelivery after a
restart, one forgotten past the bound) is decoded as any other. The bound is on the
values' bytes (the bench held at most 3.1 MB), oldest forgotten first: a refund stage
that lags far behind the join decodes, and memory stays fixed.
"""

from __future__ import annotations

from collections.abc import Sequence

from afflux.shared.events import Envelope

# Of values; the events held with them take about five times as much again (pydantic
# models: 105 MB beside 16 MB of values, measured), so about 36 MB in all at the bound.
MAX_BYTES = 6 * 1024 * 1024


class OwnRecords:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._events: dict[bytes, Sequence[Envelope]] = {}
        self._bytes = 0

    def remember(self, value: bytes, events: Sequence[Envelope]) -> None:
        if value in self._events or len(value) > self.max_bytes:
            return
        self._events[value] = events
        self._bytes += len(value)
        while self._bytes > self.max_bytes:
            oldest = next(iter(self._events))
            del self._events[oldest]
            self._bytes -= len(oldest)

    def take(self, value: bytes | None) -> Sequence[Envelope] | None:
        """The events ``value`` was encoded from, once (None: not remembered)."""
        if value is None:
            return None
        events = self._events.pop(value, None)
        if events is not None:
            self._bytes -= len(value)
        return events

    def __len__(self) -> int:
        return len(self._events)

    @property
    def held_bytes(self) -> int:
        return self._bytes
