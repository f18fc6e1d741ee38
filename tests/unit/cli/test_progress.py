"""The demo's progress line: how far, how fast, how long still."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest

from afflux.cli.progress import Pace, ProgressDisplay, clock_text, progress_line

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class PaceCase:
    done: int
    total: int
    elapsed_s: float
    rate: float | None
    eta_s: float | None


PACE_CASES = [
    PaceCase(0, 100, 3.0, None, None),  # nothing done yet: no rate, so no estimate
    PaceCase(10, 100, 0.0, None, None),  # no time elapsed: no rate either
    PaceCase(25, 100, 5.0, 5.0, 15.0),  # 5 per second, 75 left
    PaceCase(100, 100, 20.0, 5.0, 0.0),  # done: nothing left
]


@pytest.mark.parametrize("case", PACE_CASES)
def test_rate_and_time_left_follow_the_pace_so_far(case: PaceCase) -> None:
    pace = Pace(case.done, case.total, case.elapsed_s)
    assert pace.rate == case.rate
    assert pace.eta_s == case.eta_s


@dataclass(frozen=True)
class ClockCase:
    seconds: float | None
    text: str


CLOCK_CASES = [
    ClockCase(None, "-:--"),  # unknown
    ClockCase(0.4, "0:00"),
    ClockCase(59.6, "1:00"),  # rounds to the nearest second
    ClockCase(754, "12:34"),
    ClockCase(3723, "1:02:03"),  # hours appear only when needed
]


@pytest.mark.parametrize("case", CLOCK_CASES)
def test_durations_read_as_a_clock(case: ClockCase) -> None:
    assert clock_text(case.seconds) == case.text


def test_a_progress_line_names_count_percent_rate_elapsed_and_eta() -> None:
    line = progress_line("simulating visitors", "visitors", Pace(300, 1500, 6.0))
    assert line == ("simulating visitors 300/1500 (20%), 50.0 visitors/s, 0:06 elapsed, ETA 0:24")


def test_piped_output_gets_a_final_line_not_a_redraw_per_step() -> None:
    out = io.StringIO()
    display = ProgressDisplay(50, "simulating visitors", "visitors", stream=out)
    for _ in range(50):
        display.advance()
    display.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("simulating visitors 50/50 (100%), ")
    assert lines[0].endswith("ETA 0:00")
