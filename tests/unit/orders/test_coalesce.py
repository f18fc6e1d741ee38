"""Orders coalesced into batches: per event-loop turn, and with a bound on the batches in flight
the orders arriving meanwhile gather into the next batch (group commit), each caller answered
with its own result once its batch ends."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from afflux.orders.coalesce import Coalescer

pytestmark = pytest.mark.unit


class Gate:
    """A batch function that records its batches and ends each only when released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.failing = False

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.started.set()
        await self.release.wait()
        if self.failing:
            raise RuntimeError("broker away")
        return [item * 10 for item in items]


async def test_a_lone_order_runs_at_once_in_a_batch_of_its_own() -> None:
    gate = Gate()
    gate.release.set()
    coalescer: Coalescer[int, int] = Coalescer(gate, max_in_flight=2)

    assert await coalescer.submit(7) == 70
    assert gate.batches == [[7]]


async def test_orders_arriving_while_the_batches_in_flight_run_form_one_next_batch() -> None:
    gate = Gate()
    coalescer: Coalescer[int, int] = Coalescer(gate, max_in_flight=1)
    first = coalescer.submit(1)
    await gate.started.wait()
    # the only batch allowed is running: these wait, over several loop turns
    later = [coalescer.submit(2)]
    await asyncio.sleep(0)
    later += [coalescer.submit(3), coalescer.submit(4)]
    await asyncio.sleep(0)
    assert gate.batches == [[1]]

    gate.release.set()

    assert await first == 10
    assert await asyncio.gather(*later) == [20, 30, 40]
    assert gate.batches == [[1], [2, 3, 4]]


async def test_without_a_bound_each_loop_turn_is_a_batch_of_its_own() -> None:
    gate = Gate()
    coalescer: Coalescer[int, int] = Coalescer(gate)
    answers = [coalescer.submit(1)]
    await asyncio.sleep(0)
    answers.append(coalescer.submit(2))
    await asyncio.sleep(0)

    gate.release.set()

    assert await asyncio.gather(*answers) == [10, 20]
    assert gate.batches == [[1], [2]]


async def test_a_waiting_batch_larger_than_the_batch_size_goes_in_several_batches() -> None:
    gate = Gate()
    coalescer: Coalescer[int, int] = Coalescer(gate, max_size=2, max_in_flight=1)
    first = coalescer.submit(0)
    await gate.started.wait()
    waiting = [coalescer.submit(n) for n in range(1, 6)]

    gate.release.set()

    assert await first == 0
    assert await asyncio.gather(*waiting) == [10, 20, 30, 40, 50]
    assert gate.batches == [[0], [1, 2], [3, 4], [5]]


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_still_runs() -> None:
    gate = Gate()
    gate.failing = True
    coalescer: Coalescer[int, int] = Coalescer(gate, max_in_flight=1)
    first = coalescer.submit(1)
    await gate.started.wait()
    waiting = coalescer.submit(2)

    gate.release.set()
    with pytest.raises(RuntimeError, match="broker away"):
        await first
    with pytest.raises(RuntimeError, match="broker away"):
        await waiting  # its own batch ran (and failed the same way): it was not left waiting
    assert gate.batches == [[1], [2]]


async def test_an_order_given_up_while_it_waits_behind_the_batch_in_flight_is_never_run() -> None:
    """Its caller's deadline passed behind a batch the broker did not answer: it answered
    503, so the order must not be claimed and produced afterwards."""
    gate = Gate()
    coalescer: Coalescer[int, int] = Coalescer(gate, max_in_flight=1)
    first = coalescer.submit(1)
    await gate.started.wait()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await coalescer.submit(2)
    kept = coalescer.submit(3)

    gate.release.set()
    assert (await first, await kept) == (10, 30)
    assert gate.batches == [[1], [3]]


async def test_an_order_is_known_started_from_when_its_batch_starts_until_it_ends() -> None:
    """What decides whether a caller past its deadline may still answer 503: only an
    order not handed to a batch yet is surely never produced."""
    gate = Gate()
    coalescer: Coalescer[int, int] = Coalescer(gate, max_in_flight=1)
    first = coalescer.submit(1)
    await gate.started.wait()
    queued = coalescer.submit(2)
    await asyncio.sleep(0)
    assert (coalescer.started(first), coalescer.started(queued)) == (True, False)

    gate.release.set()
    assert (await first, await queued) == (10, 20)
    assert (coalescer.started(first), coalescer.started(queued)) == (False, False)
