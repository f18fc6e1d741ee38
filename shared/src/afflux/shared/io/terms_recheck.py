"""Refusals that only stale campaign terms would make: asked again once the view caught up.

The orders and clicks services accept an event once their own campaign view holds its
campaign, and the worker names the terms version it decided with, so those terms were on
the ``campaigns`` topic before the event was written. Every other process follows that
topic on its own and can be a fetch behind: an event read in that moment would be refused
as of an unknown campaign or terms version (or above a limit new terms raised) and
dead-lettered, although nothing is wrong with it. Such a refusal is held until the view
has read everything the broker held a moment after this process first saw the record (a
record stamped more than the hosts' clock-skew allowance before the view's last catch-up
is not held), then the event is taken again; only what is still refused then is
dead-lettered.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.io.campaign_view import CampaignDirectory

# How far the clocks of the hosts that stamp records (the worker's, the orders and
# clicks services') may be off this process's: the clock-skew allowance the worker
# refuses future events by. A record's stamp is compared with this process's clock and
# with the time its view last caught up, so at 1 s a worker host 2 s ahead or behind
# the ledger's had conversions of terms published a moment before refused for good
# (ahead: "not ours"; behind: "the view had caught up"). A fresh record is always held
# until one fetch after it was first seen, which no clock can fool (SEEN_SLACK_MS).
MARGIN_MS = DEFAULT_CLOCK_SKEW_MS
# A fetch answer this long after this process first saw a record reflects everything the
# broker held when the record was written: the same clock measures both, no skew.
SEEN_SLACK_MS = 20
# However long the view takes (a broker away), a held event waits at most this long.
WAIT_S = 5.0
# Holding never takes more than this share of the last WINDOW_S: a stream of fresh
# hostile records written straight to a topic slows a consumer by at most that much (past
# it they are refused at once, as before).
WAIT_SHARE = 0.2
WINDOW_S = 10.0


class WaitShare:
    """How much of the last ``WINDOW_S`` was spent waiting, against ``WAIT_SHARE`` of it:
    past that share a waiter does not wait (a broker or view that never answers slows a
    consumer by at most that much)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._waits: deque[tuple[float, float]] = deque()  # (start, end), monotonic s

    def waited(self, started: float, ended: float) -> None:
        self._waits.append((started, ended))

    def over(self) -> bool:
        since = self.monotonic() - WINDOW_S
        waits = self._waits
        while waits and waits[0][1] < since:
            waits.popleft()
        spent = sum(end - max(start, since) for start, end in waits)
        return spent >= WAIT_SHARE * WINDOW_S


class TermsRecheck:
    def __init__(
        self,
        directory: CampaignDirectory,
        clock: Callable[[], int],
        refusals: tuple[str, ...],
        margin_ms: int = MARGIN_MS,
        wait_s: float = WAIT_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.clock = clock
        # Parts of the refusal reasons that newer terms could lift.
        self.refusals = refusals
        self.margin_ms = margin_ms
        self.wait_s = wait_s
        self.monotonic = monotonic
        self.share = WaitShare(monotonic)

    def may_lift(self, refused: str, record_ms: int) -> int | None:
        """The view's catch-up time after which a refusal of an event in a record stamped
        ``record_ms`` (seen now) is final; None: it is final already. It is final when the
        reason is not one newer terms could lift, when the view has caught up a margin
        after the record's time (or after now), when the record is stamped beyond the
        margin ahead (not ours), when nothing follows the view (``synced_at_ms`` 0, a
        consumer driven without Kafka) and while holding is over its share of time."""
        directory = self.directory
        if directory.synced_at_ms <= 0 or not any(part in refused for part in self.refusals):
            return None
        now = self.clock()
        if not directory.may_lag(record_ms, now, self.margin_ms):
            return None
        target = min(record_ms + self.margin_ms, now + SEEN_SLACK_MS)
        if directory.synced_at_ms >= target or self.share.over():
            return None
        return target

    async def caught_up(self, target_ms: int) -> bool:
        """Wait until the view is in sync as of ``target_ms`` (False: not within
        ``wait_s``)."""
        started = self.monotonic()
        try:
            return await self.directory.synced_past(target_ms, self.wait_s)
        finally:
            self.share.waited(started, self.monotonic())
