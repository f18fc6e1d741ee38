"""How far an event's own time may run ahead of the broker's time for its record.

An event time later than its record's timestamp plus the allowed clock skew
cannot be true; taken as it is, it would move a stage's event-time watermark
into the future. The orders service refuses such times at its door
(``AFFLUX_ORDERS_CLOCK_SKEW_S``, the same default); the attribution worker and
the batch oracle refuse records produced straight to a topic by this rule.
"""

from __future__ import annotations

DEFAULT_CLOCK_SKEW_MS = 5 * 60_000
EVENT_TIME_IN_FUTURE = "event_time_in_future"


def event_time_in_future(occurred_at: int, record_ts: int, skew_ms: int) -> bool:
    """True when ``occurred_at`` is more than ``skew_ms`` after ``record_ts`` (exactly
    ``skew_ms`` after is still accepted)."""
    return occurred_at - record_ts > skew_ms
