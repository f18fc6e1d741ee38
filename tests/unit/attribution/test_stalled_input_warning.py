"""An owned input partition that makes no progress is reported once, naming what holds
its safe time: no fetch answered for it, or records below its high watermark left
unprocessed. Records that keep coming, however slowly, are never reported."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from recording_runtime import recording_runtime, ten_percent_sale

from afflux.attribution.stage import STALLED_WARN_MS, Owned

pytestmark = pytest.mark.unit


class Clock:
    now = 1_000_000

    def __call__(self) -> int:
        return self.now


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("high", "expected"),
    [
        (None, "fetch high watermark unknown (no fetch answered)"),
        (7, "processed to offset 0, fetch high watermark 7"),
    ],
)
def test_an_input_without_progress_is_reported_once_after_the_limit(
    caplog: pytest.LogCaptureFixture, high: int | None, expected: str
) -> None:
    clock = Clock()
    stage = recording_runtime([], ten_percent_sale(), "stall", clock=clock).refunds
    stage.owned[0] = Owned(stage.new_state())
    # Only the first input holds records nobody processes; the others are caught up.
    first = stage.inputs[0]
    stage.transport = replace(
        stage.transport,
        highwater=lambda t, p: (
            (None if high is None else (high, clock.now)) if t == first else (0, clock.now)
        ),
    )
    caplog.set_level(logging.WARNING)

    stage.note()
    clock.now += STALLED_WARN_MS - 1
    stage.note()
    assert warnings_of(caplog) == []

    clock.now += 1
    stage.note()
    clock.now += STALLED_WARN_MS
    stage.note()

    [warning] = warnings_of(caplog)
    assert warning.startswith(f"refunds[0]: no progress on {first}[0] for 30 s")
    assert expected in warning


def test_records_that_keep_coming_slowly_are_never_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    stage = recording_runtime([], ten_percent_sale(), "slow", clock=clock).refunds
    owned = stage.owned[0] = Owned(stage.new_state())
    stage.transport = replace(stage.transport, highwater=lambda t, p: (1_000, clock.now))
    caplog.set_level(logging.WARNING)

    for step in range(10):
        owned.consumed = dict.fromkeys(stage.inputs, step)  # one record each time
        stage.note()
        clock.now += STALLED_WARN_MS - 1

    assert warnings_of(caplog) == []
