"""The campaign view says what it applied per partition, a whole fetch answer at a time,
and wakes who waits for the records before given end offsets (the terms barrier)."""

from __future__ import annotations

import asyncio

import pytest

from afflux.shared.io.campaign_view import CampaignDirectory

pytestmark = pytest.mark.unit


def test_the_view_holds_what_every_partition_applied_up_to_its_end() -> None:
    view = CampaignDirectory()
    assert view.holds({0: 0, 1: 0})  # empty partitions: nothing to apply
    assert not view.holds({0: 3})
    view.note_applied({0: 3})
    view.note_applied({0: 2})  # an older answer never moves it back
    assert view.holds({0: 3, 1: 0})
    assert not view.holds({0: 3, 1: 1})


def test_a_waiter_wakes_once_the_view_applied_past_the_ends_and_gives_up_after_its_time() -> None:
    async def run() -> tuple[bool, bool]:
        view = CampaignDirectory()
        waiting = asyncio.ensure_future(view.applied_through({0: 5, 1: 2}, 5.0))
        await asyncio.sleep(0)
        view.note_applied({0: 5})
        await asyncio.sleep(0)
        assert not waiting.done()
        view.note_applied({1: 2})
        woke = await waiting
        never = await view.applied_through({0: 6}, 0.05)
        return woke, never

    assert asyncio.run(run()) == (True, False)
