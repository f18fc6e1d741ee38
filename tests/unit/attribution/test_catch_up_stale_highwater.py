"""Reading back what the consumer never handed over when its fetch high watermark is
stale or unknown (``Stage.catch_up``).

The consumer does not fetch a partition whose fetched records it still holds, so its
high watermark can stay at a value from before a record was appended: a partition whose
state had reached that value looked caught up, and a record the consumer then never
handed over (a rebalance drops such records, gaps.py) was never read, its dead letter
or decision never made, with nothing logged. The log end is now asked of the broker.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from recording_runtime import recording_runtime, ten_percent_sale

from afflux.attribution.stage import CATCH_UP_AFTER_MS, STALE_FETCH_MS, Owned

START = 1_000_000
FRESH = (5, -1)  # offset 5, answered by the fetch of every tick


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


async def _read_backs(
    clicks_high: tuple[int, int] | None, log_end: int | None, seconds: int
) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
    """Tick a join partition processed to clicks offset 5 for ``seconds``: the read-backs
    it made and the log ends it asked (``log_end`` None: the transport cannot ask)."""
    clock = Clock()
    stage = recording_runtime([], ten_percent_sale(), "stale-highwater", clock=clock).join
    owned = stage.owned[0] = Owned(stage.new_state())
    owned.consumed = {"clicks": 5, "orders": 0}
    asked: list[tuple[str, int]] = []

    async def ask(topic: str, p: int) -> int:
        asked.append((topic, p))
        assert log_end is not None
        return log_end

    stage.transport = replace(
        stage.transport,
        highwater=lambda t, p: (
            (clicks_high[0], clock.now)
            if t == "clicks" and clicks_high == FRESH
            else clicks_high
            if t == "clicks"
            else (0, clock.now)
        ),
        log_end=None if log_end is None else ask,
    )
    read_backs: list[tuple[str, int, int]] = []

    async def read_back(owned: object, topic: str, p: int, high: int) -> None:
        read_backs.append((topic, p, high))

    stage._read_back = read_back  # type: ignore[method-assign]
    for _ in range(seconds):
        stage.note()
        await stage.catch_up()
        clock.now += 1000
    return read_backs, asked


def test_a_high_watermark_answered_long_ago_is_checked_against_the_log_end() -> None:
    stale = (5, START)  # reached by the state, but answered before offset 5 was written

    read_backs, asked = asyncio.run(_read_backs(stale, log_end=6, seconds=30))

    assert set(asked) == {("clicks", 0)}
    assert read_backs[0] == ("clicks", 0, 6)


def test_an_unknown_high_watermark_is_checked_against_the_log_end() -> None:
    read_backs, _ = asyncio.run(_read_backs(None, log_end=6, seconds=30))

    assert read_backs[0] == ("clicks", 0, 6)


def test_nothing_is_asked_before_the_high_watermark_is_stale_and_progress_stopped() -> None:
    seconds = (STALE_FETCH_MS + CATCH_UP_AFTER_MS) // 1000 - 1

    read_backs, asked = asyncio.run(_read_backs((5, START), log_end=6, seconds=seconds))

    assert (read_backs, asked) == ([], [])


@pytest.mark.parametrize("seconds", [5, 60])
def test_a_fresh_high_watermark_the_state_reached_asks_nothing(seconds: int) -> None:
    read_backs, asked = asyncio.run(_read_backs(FRESH, log_end=5, seconds=seconds))

    assert (read_backs, asked) == ([], [])


def test_without_a_way_to_ask_the_broker_a_stale_partition_is_left_as_before() -> None:
    read_backs, _ = asyncio.run(_read_backs((5, START), log_end=None, seconds=60))

    assert read_backs == []


def test_a_broker_that_does_not_answer_is_asked_once_a_pass_and_ends_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def run() -> tuple[int, list[tuple[str, int, int]]]:
        clock = Clock()
        stage = recording_runtime([], ten_percent_sale(), "broker-away", clock=clock).join
        for p in range(4):
            stage.owned[p] = Owned(stage.new_state())
            stage.owned[p].consumed = {"clicks": 5, "orders": 3}
        asked = 0

        async def away(topic: str, p: int) -> int:
            nonlocal asked
            asked += 1
            raise ConnectionError("the broker is away")

        stage.transport = replace(stage.transport, highwater=lambda t, p: None, log_end=away)
        read_backs: list[tuple[str, int, int]] = []

        async def read_back(owned: object, topic: str, p: int, high: int) -> None:
            read_backs.append((topic, p, high))

        stage._read_back = read_back  # type: ignore[method-assign]
        for _ in range(60):
            stage.note()
            await stage.catch_up()
            clock.now += 1000
        return asked, read_backs

    asked, read_backs = asyncio.run(run())

    passes = 60 * 1000 // CATCH_UP_AFTER_MS
    assert 0 < asked <= passes  # one ask a pass, not one per partition and input
    assert read_backs == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
