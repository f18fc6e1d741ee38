"""A payout read back from the payouts topic becomes the creator's payout record only if
a payout run could have made it: written straight to the topic, a negative amount made
the next run pay 50,010.00 on 10.00 approved, an amount past Redis's integers left a
record without its paid total (the creator never paid again in that campaign), and one
in another currency cut what was due in the campaign's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from tests.unit.payouts.test_placement_reversal_currency import placement

from afflux.payouts.batch import Batch
from afflux.payouts.placement import Rejected
from afflux.shared.core.ids import derived_id
from afflux.shared.core.money import MAX_AMOUNT_MINOR
from afflux.shared.events import PayoutIssued

pytestmark = pytest.mark.unit

DEC_1 = 1_796_083_200_000


def payout(**changed: Any) -> PayoutIssued:
    fields: dict[str, Any] = {
        "campaign_id": "camp",
        "affiliate_id": "anna",
        "period": "2026-11",
        "amount_minor": 10_000,
        "currency": "EUR",
    }
    fields |= changed
    payout_id = derived_id(
        "payout", fields["affiliate_id"], fields["campaign_id"], fields["period"]
    )
    return PayoutIssued(
        event_id=payout_id,
        occurred_at=DEC_1,
        payout_id=changed.pop("payout_id", payout_id),
        line_ids=("line-1",),
        **{k: v for k, v in fields.items() if k != "payout_id"},
    )


def test_a_payout_a_run_made_is_its_record_sent() -> None:
    batch = Batch()
    placement().place(payout(), batch)
    [record] = batch.payouts
    assert record == {
        "payout_id": derived_id("payout", "anna", "camp", "2026-11"),
        "affiliate_id": "anna",
        "campaign_id": "camp",
        "currency": "EUR",
        "period": "2026-11",
        "amount_minor": 10_000,
        "as_of": DEC_1,
        "line_ids": ["line-1"],
        "emitted": True,
    }


@dataclass(frozen=True)
class Refused:
    name: str
    changed: dict[str, Any]
    says: str


REFUSED = [
    Refused("a negative amount", {"amount_minor": -5_000_000}, "out of range"),
    Refused("nothing", {"amount_minor": 0}, "out of range"),
    Refused("past the bound", {"amount_minor": MAX_AMOUNT_MINOR + 1}, "out of range"),
    Refused("past Redis's integers", {"amount_minor": 2**70}, "out of range"),
    Refused("another currency", {"currency": "USD"}, "payout in USD"),
    Refused("an unknown campaign", {"campaign_id": "ghost"}, "has no terms"),
    Refused("no period", {"period": "hostile"}, "payout period"),
    Refused("another slot's id", {"payout_id": "payout-of-someone-else"}, "payout_id"),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_a_payout_no_run_could_have_made_is_refused(case: Refused) -> None:
    batch = Batch()
    with pytest.raises(Rejected, match=case.says):
        placement().place(payout(**case.changed), batch)
    assert batch.payouts == []
