"""The wall clock, outside the pure core.

The core takes time as an input (``afflux.shared.core.clock.Clock``, UTC
milliseconds) and never reads it; the edges pass ``system_clock`` in, tests a
clock of their own.
"""

from __future__ import annotations

import time


def system_clock() -> int:
    """Now, in UTC milliseconds."""
    return time.time_ns() // 1_000_000
