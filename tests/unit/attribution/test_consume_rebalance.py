"""The worker's agents hand records to the stages in batches (app._consume). A rebalance
empties the stream's channel and then waits until every record already taken is
acknowledged, so a record the agent has taken must be handled even when the channel
is emptied before the next record comes. Driven over Faust's own stream, channel and
flow control, with the rebalance's steps as Faust's on_partitions_revoked takes them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import faust
from faust.types import Message

from afflux.attribution.app import _consume
from afflux.attribution.stage import Record


def test_a_record_taken_before_a_rebalance_empties_the_channel_is_handled_and_acked() -> None:
    handled, acked = asyncio.run(_rebalance_after_the_first_record())
    assert handled == [0]
    assert acked == [True, False, False]  # the other two were emptied out, never taken


async def _rebalance_after_the_first_record() -> tuple[list[int], list[bool]]:
    app = faust.App(
        "consume-rebalance",
        broker="kafka://127.0.0.1:9",  # never connected to: nothing here fetches
        store="memory://",
        autodiscover=False,
        web_enabled=False,
    )
    app.flow_control.resume()
    channel = app.channel()
    stream = channel.stream()
    loop = asyncio.get_running_loop()

    def revoke() -> None:  # what Faust's on_partitions_revoked does before it waits
        app.flow_control.suspend()
        app.flow_control.clear()

    def on_take(value: Any) -> Any:
        # The rebalance comes right after the first record was taken, while more
        # records still wait in the channel.
        if not taken:
            loop.call_soon(revoke)
        taken.append(value)
        return value

    taken: list[Any] = []
    stream.add_processor(on_take)
    generation = app.consumer_generation_id
    messages = [_message(offset, generation) for offset in range(3)]
    for message in messages:
        await channel.put(channel._create_event(None, b"{}", {}, message=message))  # type: ignore[attr-defined]

    handled: list[int] = []
    came = asyncio.Event()

    async def handle_many(records: list[Record]) -> list[bool]:
        handled.extend(r.offset for r in records)
        came.set()
        return [True] * len(records)

    manual: Any = stream.noack()  # type: ignore[attr-defined]
    agent = asyncio.ensure_future(_consume(manual, handle_many))
    with contextlib.suppress(TimeoutError):  # the assertions say what was handled
        await asyncio.wait_for(came.wait(), timeout=2)
    await asyncio.sleep(0.05)  # the acknowledgements follow the handling
    agent.cancel()
    await asyncio.gather(agent, return_exceptions=True)
    return handled, [m.acked for m in messages]


def _message(offset: int, generation: int) -> Message:
    """A record of orders[0] fetched in the current generation."""
    headers: dict[str, bytes] = {}
    key, value, checksum = None, b"{}", None
    return Message(
        "orders", 0, offset, 0.0, 0, headers, key, value, checksum, generation_id=generation
    )
