"""A partition's high watermark is dated by when the fetch request that reported it was
sent, not by when its answer was read: a record appended while the answer waited to be
read is past that high watermark, so only the request's time bounds what it holds."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition

from afflux.attribution.faust_bridge import FETCH_TIMES, time_fetches

pytestmark = pytest.mark.unit

ANSWER_READ_AFTER_S = 0.3  # the consumer thread waited this long to read the answer
ASKED = TopicPartition("clicks", 0)
NOT_ANSWERED = TopicPartition("clicks", 1)


@dataclass
class PartitionState:
    highwater: int | None = None
    timestamp: int | None = None


@dataclass
class Assignment:
    states: dict[TopicPartition, PartitionState] = field(
        default_factory=lambda: {ASKED: PartitionState(), NOT_ANSWERED: PartitionState(3, 1)}
    )

    def state_value(self, tp: TopicPartition) -> PartitionState | None:
        return self.states.get(tp)


@dataclass
class Request:
    topics: list[tuple[str, list[tuple[int, int, int]]]]


class Fetcher:
    """aiokafka's fetcher as far as the timing goes: it stamps what it answers with the
    time it reads the answer."""

    async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
        await asyncio.sleep(ANSWER_READ_AFTER_S)
        state = assignment.state_value(ASKED)
        state.highwater, state.timestamp = 42, int(time.time() * 1000)
        return True  # NOT_ANSWERED: an error for that partition, its state left as it was


def test_the_high_watermark_is_dated_by_the_request_not_by_the_answer() -> None:
    fetcher, assignment = Fetcher(), Assignment()
    time_fetches(fetcher)
    request = Request([("clicks", [(0, 0, 1_048_576), (1, 0, 1_048_576)])])

    before = int(time.time() * 1000)
    assert asyncio.run(fetcher._proc_fetch_request(assignment, 1, request)) is True
    read_at = assignment.states[ASKED].timestamp
    assert read_at is not None

    times = getattr(fetcher, FETCH_TIMES)
    high, sent = times[ASKED]
    assert high == 42
    assert before <= sent < read_at - ANSWER_READ_AFTER_S * 1000 + 100
    assert NOT_ANSWERED not in times  # only what this answer reported is dated


def test_timing_twice_wraps_once() -> None:
    fetcher = Fetcher()
    time_fetches(fetcher)
    wrapped = fetcher._proc_fetch_request
    time_fetches(fetcher)
    assert fetcher._proc_fetch_request is wrapped
