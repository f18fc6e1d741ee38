"""A what-if of a campaign one of whose events is dated past what a period holds (at or
after 9999-12-01; the schemas bound event times only at the end of 9999): the ledger
dead-letters such a conversion (no period ends within a datetime), and the replay
raised ``year ... is out of range`` on it, so every what-if of the campaign answered
500 for good. The decoder now leaves such events out, counted as skipped."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest

from afflux.shared.core.clock import MAX_EVENT_TIME_MS
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.diff import whatif
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.events import ClickRecorded, Envelope, OrderPlaced
from afflux.shared.whatif_decode import _LAST_MS, LogReader

pytestmark = pytest.mark.unit

NOW = 1_793_491_200_000
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "camp",
        "merchant_id": "m",
        "currency": "EUR",
        "plan": {"sale": {"rate": {"percent": "10"}}},
    }
)
VERSIONS = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)


def click(n: int, at: int) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ce{n}", occurred_at=at, click_id=f"k{n}", link_code="l",
        affiliate_id="ana", campaign_id="camp", visitor_id=f"v{n}",
    )  # fmt: skip


def order(n: int, at: int, **extra: object) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"oe{n}", occurred_at=at, order_id=f"o{n}", campaign_id="camp",
        merchant_id="m", amount_minor=10_000, currency="EUR", visitor_id=f"v{n}", **extra,
    )  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    at: int
    kept: bool


CASES = [
    # The last millisecond before 9999-12-01: kept and priced.
    Case("just before the cut", _LAST_MS - 1, True),
    # At the cut: left out.
    Case("at the cut", _LAST_MS, False),
    # The last millisecond an event time may be.
    Case("the last event time", MAX_EVENT_TIME_MS, False),
]


def feed(events: list[Envelope]) -> LogReader:
    reader = LogReader(CampaignLog("camp"))
    for event in events:  # as the services write them: one compact record each
        reader.record(event.model_dump_json().encode())
    return reader


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_event_past_what_a_period_holds_is_left_out_and_the_whatif_answers(
    case: Case,
) -> None:
    reader = feed(
        [
            click(1, NOW - 1000),
            order(1, NOW),
            click(2, case.at - 1000),
            order(2, case.at),
            click(3, case.at - 1000),
            order(3, case.at, items=[{"sku": "s", "price_minor": 10_000}]),  # the full decode
        ]
    )
    assert [o.order_id for o in reader.log.orders] == (["o1", "o2", "o3"] if case.kept else ["o1"])
    late = [case.at, case.at, case.at - 1000, case.at - 1000]  # two orders, two clicks
    assert reader.skipped == sum(at >= _LAST_MS for at in late)
    diff = whatif(reader.log, VERSIONS, TERMS.model_copy(update={"model": "first_click"}))
    assert diff.current_total_minor == (3000 if case.kept else 1000)
    assert orjson.dumps(diff.as_dict())  # an answer, not an error
