"""What the producer's own sends say about the broker, for ``/healthz``.

"Producer started" stays true while the broker is stalled or gone, and every order
sent meanwhile waits out the produce timeout and is answered 503: a load balancer
asking /healthz should hear that before it sends more. The sends already made tell
it for free: one waiting longer than ``stall_after_s`` means the broker is not
acknowledging; a failure with nothing acknowledged since means it refused or timed
out. When no send has been acknowledged for ``fresh_s`` (an idle service), the
health check asks the broker for metadata instead (``probe``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from afflux.shared.io.kafka import broker_away

STALL_AFTER_S = 2.0
FAILURE_SHOWN_S = 10.0
FRESH_S = 5.0

Verdict = str | None | Literal["probe"]


@dataclass(frozen=True)
class SendState:
    """The watch at one instant: monotonic seconds, None for never."""

    now: float
    oldest_waiting: float | None
    last_acknowledged: float | None
    last_failed: float | None
    last_error: str


def verdict(
    state: SendState,
    *,
    stall_after_s: float = STALL_AFTER_S,
    failure_shown_s: float = FAILURE_SHOWN_S,
    fresh_s: float = FRESH_S,
) -> Verdict:
    """None when the sends say the broker acknowledges, a reason when they say it does
    not, ``"probe"`` when they say nothing recent either way."""
    if state.oldest_waiting is not None and state.now - state.oldest_waiting > stall_after_s:
        waited = state.now - state.oldest_waiting
        return f"a send has waited {waited:.1f} s for the broker's acknowledgement"
    failed = state.last_failed
    acknowledged = state.last_acknowledged
    if (
        failed is not None
        and (acknowledged is None or failed > acknowledged)
        and state.now - failed <= failure_shown_s
    ):
        ago = state.now - failed
        return f"the broker did not acknowledge a send {ago:.1f} s ago ({state.last_error})"
    if acknowledged is not None and state.now - acknowledged <= fresh_s:
        return None
    return "probe"


class SendWatch:
    """Counts the publisher's sends in and out; ``state()`` reads them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._waiting: dict[int, float] = {}
        self._next = 0
        self._acknowledged: float | None = None
        self._failed: float | None = None
        self._error = ""

    def begin(self) -> int:
        token = self._next
        self._next += 1
        self._waiting[token] = self._clock()
        return token

    def end(self, token: int, error: BaseException | None) -> None:
        """The send acknowledged (``error`` None) or failed with ``error``. Only a failure
        that says the broker is away counts (``broker_away``): one that refuses the record
        itself (too large) or comes from this process (a producer closing) says nothing
        of the broker either way; counted as a failure, a quiet service said 503 for ten
        seconds."""
        self._waiting.pop(token, None)
        if error is None:
            self._acknowledged = self._clock()
        elif broker_away(error):
            self._failed = self._clock()
            self._error = type(error).__name__

    def abandon(self, token: int) -> None:
        """The send was cancelled (the process stopping): it says nothing of the broker."""
        self._waiting.pop(token, None)

    def state(self) -> SendState:
        return SendState(
            now=self._clock(),
            oldest_waiting=min(self._waiting.values(), default=None),
            last_acknowledged=self._acknowledged,
            last_failed=self._failed,
            last_error=self._error,
        )
