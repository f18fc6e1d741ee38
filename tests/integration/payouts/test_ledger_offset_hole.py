"""A hole in an input log (offsets with no record, as a broker killed mid-write can
leave) never stops the ledger: it reads on past the hole, counts it, and applies
every record the log does hold."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_stack import (
    LedgerStack,
    applied_orders,
    conversion,
    metric,
    produce,
    running_payouts,
    stored_offsets,
    until,
)
from log_holes import write_after_hole

from afflux.shared.io.http import tls as oneshot
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

CAMPAIGN = "hole-shop"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LedgerStack]:
    with running_payouts(tmp_path, CAMPAIGN) as stack:
        yield stack


async def produce_after_hole(bootstrap: str, order: str, hole: int) -> None:
    """One conversion to conversions[0], ``hole`` empty offsets before it."""
    event = conversion(CAMPAIGN, order, "creator-hole")
    await write_after_hole(bootstrap, "conversions", 0, order.encode(), encode(event), hole)


def test_ledger_reads_past_a_hole_in_its_input_log(ledger: LedgerStack) -> None:
    asyncio.run(produce(ledger.bootstrap, CAMPAIGN, [(f"before-{n}", 0) for n in range(3)]))
    until(lambda: stored_offsets(ledger.redis_url).get("conversions|0") == 3, 60, "3 applied")
    # The next poll starts at offset 5: offsets 3 and 4 hold nothing.
    asyncio.run(produce_after_hole(ledger.bootstrap, "after-hole", hole=2))
    asyncio.run(produce(ledger.bootstrap, CAMPAIGN, [("after-after", 0)]))

    until(
        lambda: stored_offsets(ledger.redis_url).get("conversions|0") == 7,
        30,
        "the ledger read past offsets 3..4 to the end of conversions[0]",
    )
    assert applied_orders(ledger.redis_url, CAMPAIGN) == {
        "before-0",
        "before-1",
        "before-2",
        "after-hole",
        "after-after",
    }
    text = oneshot.get(f"{ledger.url}/metrics", timeout=5).text
    assert metric(text, "afflux_ledger_offset_holes_total") == 2
    assert "conversions[0]: offsets 3..4 are not in the log" in ledger.log_text()
    assert oneshot.get(f"{ledger.url}/healthz", timeout=5).status_code == 200
