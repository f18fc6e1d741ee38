"""A record the producer never took (no metadata, its buffer full) is marked as never sent,
so the orders service releases its claim; one it took and lost the answer of is not: the
broker may have stored it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, RequestTimedOutError

from afflux.shared.io.kafka import not_sent, send_chunks
from afflux.shared.wire import Chunk

pytestmark = pytest.mark.unit


class Producer:
    """What ``send_chunks`` calls of a producer: ``send`` hands a record over, and the
    future it returns is the broker's answer."""

    def __init__(self, handing_over: Exception | None, answer: Exception | None) -> None:
        self.handing_over, self.answer = handing_over, answer

    async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[object]:
        if self.handing_over is not None:
            raise self.handing_over
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.answer is not None:
            future.set_exception(self.answer)
        else:
            future.set_result(object())
        return future


@pytest.mark.parametrize(
    ("handing_over", "answer", "never_sent"),
    [
        pytest.param(KafkaTimeoutError(), None, True, id="no metadata: never handed over"),
        pytest.param(None, RequestTimedOutError(), False, id="taken, unanswered: maybe stored"),
        pytest.param(None, KafkaTimeoutError(), False, id="taken, expired: maybe stored"),
    ],
)
async def test_only_a_record_the_producer_never_took_is_marked_never_sent(
    handing_over: Exception | None, answer: Exception | None, never_sent: bool
) -> None:
    producer = Producer(handing_over, answer)

    [outcome] = await send_chunks(producer, "orders", [Chunk(0, b"k", [b"{}"], [0])])  # type: ignore[arg-type]

    assert isinstance(outcome, Exception)
    assert not_sent(outcome) is never_sent
