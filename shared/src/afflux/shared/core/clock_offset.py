"""How far this process's clock is off a reference clock, from timed round trips.

Pure. A sample is (sent, answered, reference): this process's clock when it asked, when
the answer came, and the reference's time in the answer, all in ms. The reference read
its clock somewhere in the round trip, so the offset is taken at its midpoint, give or
take half the round trip; of several samples the shortest round trip says the most.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Offset:
    """``offset_ms``: this clock less the reference's (positive: this one is ahead);
    ``uncertainty_ms``: at most this far off, half the round trip it was taken in."""

    offset_ms: float
    uncertainty_ms: float


def offset_of(sent_ms: float, answered_ms: float, reference_ms: float) -> Offset:
    midpoint = (sent_ms + answered_ms) / 2
    return Offset(midpoint - reference_ms, max(0.0, answered_ms - sent_ms) / 2)


def best_offset(samples: Iterable[tuple[float, float, float]]) -> Offset:
    """The offset of the sample with the shortest round trip; ValueError without one."""
    offsets = [offset_of(*sample) for sample in samples]
    if not offsets:
        raise ValueError("no sample")
    return min(offsets, key=lambda o: o.uncertainty_ms)
