"""Whose turn a what-if replay is. The payouts process runs one at a time; a principal
refused because another's ran is *waiting*. While anyone else waits, a principal whose
replay just ended waits as long as it took (at least ``MIN_GAP_S``) before its next,
so those refused find the slot free meanwhile; alone, it may go again at once. One
merchant's key in a loop held the slot for every other tenant (another's what-ifs were
refused 19 times in 20). Plain values and an explicit clock (monotonic seconds): no I/O.
"""

from __future__ import annotations

import threading

MIN_GAP_S = 1.0
# A refusal counts as someone waiting for this long (clients retry within it).
WAITING_S = 30.0
# Each map holds principals seen within a replay time limit or WAITING_S; past this
# many the oldest are forgotten first (one forgotten early only waits less).
MAX_TRACKED = 10_000


class Turns:
    def __init__(
        self,
        min_gap_s: float = MIN_GAP_S,
        waiting_s: float = WAITING_S,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        self._min_gap_s = min_gap_s
        self._waiting_s = waiting_s
        self._max_tracked = max_tracked
        self._ready_at: dict[str, float] = {}
        self._refused_at: dict[str, float] = {}
        # Ended from the replay's thread, asked from the event loop.
        self._lock = threading.Lock()

    def wait_s(self, who: str, now: float) -> float:
        """How long ``who`` must wait before its next replay may start (0: it may)."""
        with self._lock:
            ready_at = self._ready_at.get(who, now)
            if ready_at <= now:
                self._ready_at.pop(who, None)
                return 0.0
            fresh = now - self._waiting_s
            others = any(w != who and at > fresh for w, at in self._refused_at.items())
            return ready_at - now if others else 0.0

    def refused_busy(self, who: str, now: float) -> None:
        """``who`` was refused because another's replay ran: it is waiting."""
        with self._lock:
            self._refused_at.pop(who, None)  # latest last, so the oldest go first below
            self._refused_at[who] = now
            _bound(self._refused_at, self._max_tracked, now - self._waiting_s)

    def started(self, who: str) -> None:
        with self._lock:
            self._refused_at.pop(who, None)

    def ended(self, who: str, started: float, ended: float) -> None:
        """``who``'s replay ran from ``started`` to ``ended``: while others wait, its
        next waits as long."""
        gap = max(self._min_gap_s, ended - started)
        with self._lock:
            self._ready_at.pop(who, None)
            self._ready_at[who] = ended + gap
            _bound(self._ready_at, self._max_tracked, ended)


def _bound(times: dict[str, float], most: int, stale_before: float) -> None:
    if len(times) <= most:
        return
    for stale in [w for w, at in times.items() if at <= stale_before]:
        del times[stale]
    while len(times) > most:
        del times[min(times, key=times.__getitem__)]
