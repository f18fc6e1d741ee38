"""This process's clock against Redis's, exported for the host-clock alert.

Clicks are dated by the clicks service's clock and orders by the orders service's, and
attribution compares the two: hosts whose clocks disagree by a minute move every cookie
window by a minute (a click just inside it falls out, a link tapped on the thank-you page
a minute after the purchase takes the sale), and payout runs and approvals follow the
payouts host's clock. Nothing in the events can show it, since every time in them is one
of those clocks. Each of these services reads Redis's ``TIME`` (the one server they all
reach) every ``DEFAULT_INTERVAL_S`` with its own clock around it, and exports
``afflux_clock_offset_seconds`` (its clock less Redis's, at the round trip's midpoint,
the best of ``SAMPLES``) and ``afflux_clock_offset_uncertainty_seconds`` (half that round
trip). ``AffluxHostClocksDisagree`` compares the services' offsets: a common reference
cancels out, so Redis's own clock being off does not fire it. Nothing is exported before
the first reading.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from afflux.shared.core.clock_offset import Offset, best_offset
from afflux.shared.io.refresh import refresh_forever

DEFAULT_INTERVAL_S = 30.0
SAMPLES = 3


class TimeReader(Protocol):
    async def time(self) -> Any: ...


def _reference_ms(answer: Any) -> float:
    """Redis's ``TIME`` answer (seconds, microseconds) in ms; a cluster client answers
    per node: the first node's (one reference for every service is what counts)."""
    if isinstance(answer, dict):
        answer = next(iter(answer.values()))
    seconds, micros = answer
    return int(seconds) * 1000 + int(micros) / 1000


class ClockOffsetCollector(Collector):
    """Exports the last reading; ``run`` keeps it current."""

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float]) -> None:
        """``clock``: the service's own clock in ms, the one that dates its events."""
        self.clock = clock
        self.last: Offset | None = None
        registry.register(self)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        last = self.last
        if last is None:
            return
        yield GaugeMetricFamily(
            "afflux_clock_offset_seconds",
            "This service's clock less Redis's (TIME), at a round trip's midpoint",
            value=last.offset_ms / 1000,
        )
        yield GaugeMetricFamily(
            "afflux_clock_offset_uncertainty_seconds",
            "Half the round trip afflux_clock_offset_seconds was measured in",
            value=last.uncertainty_ms / 1000,
        )

    async def update(self, redis: TimeReader) -> Offset:
        samples = []
        for _ in range(SAMPLES):
            sent = self.clock()
            answer = await redis.time()
            samples.append((sent, self.clock(), _reference_ms(answer)))
        self.last = best_offset(samples)
        return self.last

    async def run(self, redis: TimeReader, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        """Refresh every ``interval_s`` until cancelled; a failed read keeps the last one."""
        await refresh_forever(lambda: self.update(redis), interval_s, "reading Redis TIME")


async def no_earlier_than_redis(
    redis: TimeReader, clock: Callable[[], int], timeout_s: float = 5.0
) -> Callable[[], int]:
    """``clock``, or Redis's time where that is later (measured now, its uncertainty
    counted toward the later): for a check that must not take "now" too early, run on an
    operator's machine whose clock may be minutes slow. The later of the two, since
    nothing watches Redis's own clock either (``AffluxHostClocksDisagree`` compares the
    services' offsets from it): a Redis minutes slow must not make "now" early. Redis
    not answering within ``timeout_s``: ``clock`` alone."""
    collector = ClockOffsetCollector(CollectorRegistry(), lambda: float(clock()))
    try:
        measured = await asyncio.wait_for(collector.update(redis), timeout_s)
    except Exception:  # no TIME (an ACL, Redis away): the machine's clock, as before
        return clock
    behind = max(0, math.ceil(measured.uncertainty_ms - measured.offset_ms))
    return lambda: clock() + behind
