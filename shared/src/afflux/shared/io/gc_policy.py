"""Keeping Python's cycle collector away from long-lived, cycle-free state.

Our processes hold large state that never forms reference cycles (the join's
visitors and clicks, link caches) and allocate fast. With the default
thresholds the collector runs every 700 allocations and its full passes walk
the whole heap: profiling the attribution worker at 200k visitors showed
about a quarter of its time there. Reference counting still frees every
object the moment it is dropped; the collector is only needed for cycles.
The HTTP services see the same effect on a small heap: request handling makes
no cycles, yet a gen-0 pass every few requests walked every live coroutine and
future and cost more than the handler.

- ``tune_gc`` (at start): collect once, freeze what start-up built, and raise
  the thresholds so collections are rarer.
- ``Refreezer`` (for processes whose state keeps growing): every few seconds,
  collect what is not frozen yet (only what was allocated since the last
  freeze) and freeze the survivors; once an hour, thaw everything so that a
  cycle among frozen objects that has become garbage is still reclaimed.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

GC_THRESHOLD = (50_000, 20, 100)
REFREEZE_EVERY_S = 10.0
THAW_EVERY_S = 3600.0


def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


class Refreezer:
    """Freeze the survivors periodically; thaw them all once in a while."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._frozen_at = clock()
        self._thawed_at = self._frozen_at

    def maybe_refreeze(self) -> bool:
        """Collect and freeze when due; True when it did."""
        now = self.clock()
        if now - self._frozen_at < REFREEZE_EVERY_S:
            return False
        if now - self._thawed_at >= THAW_EVERY_S:
            gc.unfreeze()
            self._thawed_at = now
        gc.collect()
        gc.freeze()
        self._frozen_at = now
        return True
