"""A what-if answer is bounded whatever the draft moves: a draft that takes every order
of a large campaign away listed every creator and every order id gained or lost in one
answer (and on the portal page), however many. Now it lists the creators whose pay
moves most (``MAX_CREATORS``) and of each the first order ids (``MAX_ORDER_IDS``), with
totals that count them all."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.payouts.portal.whatif_page import diff_html
from afflux.shared.core.attribution import ClickTouch
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.diff import MAX_CREATORS, MAX_ORDER_IDS, whatif
from afflux.shared.core.whatif.log import CampaignLog, LoggedOrder

pytestmark = pytest.mark.unit

DAY0 = 1_793_491_200_000
RAW = {
    "campaign_id": "camp",
    "merchant_id": "m-1",
    "currency": "EUR",
    "cookie_window_days": 10,
    "plan": {"sale": {"rate": {"percent": "10"}}},
}
CURRENT = (
    TermsVersion(
        version=1, effective_from=0, published_at=0, terms=CampaignTerms.model_validate(RAW)
    ),
)
# The draft pays nothing for sales: every creator loses all it had, no order moves.
NO_SALES = CampaignTerms.model_validate({**RAW, "cookie_window_days": 0})


@dataclass(frozen=True)
class Case:
    name: str
    creators: int
    orders_of_the_first: int  # the first creator's orders (the others have one each)


CASES = [
    # At both bounds: everything listed.
    Case("at the bounds", MAX_CREATORS, MAX_ORDER_IDS),
    # One creator and one order id past them: one of each left out, counted.
    Case("one past each bound", MAX_CREATORS + 1, MAX_ORDER_IDS + 1),
    # Far past them.
    Case("far past", 3 * MAX_CREATORS, 20 * MAX_ORDER_IDS),
]


def log_of(case: Case) -> CampaignLog:
    log = CampaignLog("camp")
    n = 0
    for creator in range(case.creators):
        for _ in range(case.orders_of_the_first if creator == 0 else 1):
            visitor, at = f"v{n}", DAY0 + n * 1000
            log.add_click(visitor, ClickTouch(f"k{n}", f"c{creator:05d}", "camp", at))
            log.add_order(LoggedOrder(f"o{n:06d}", f"e{n}", visitor, at + 500, 10_000, "EUR"))
            n += 1
    return log


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_answer_lists_at_most_the_bounds_and_counts_everything(case: Case) -> None:
    diff = whatif(log_of(case), CURRENT, NO_SALES)
    answer = diff.as_dict()

    assert answer["creators_total"] == case.creators
    assert len(answer["creators"]) == min(case.creators, MAX_CREATORS)
    first = answer["creators"][0]  # the largest change: the creator with the most orders
    assert first["affiliate_id"] == "c00000"
    assert first["lost_total"] == case.orders_of_the_first
    assert len(first["lost"]) == min(case.orders_of_the_first, MAX_ORDER_IDS)
    assert first["lost"] == sorted(first["lost"])
    assert all(len(c["lost"]) <= MAX_ORDER_IDS for c in answer["creators"])
    assert sum(c["current_minor"] for c in answer["creators"]) <= diff.current_total_minor

    page = diff_html(diff)
    assert page.count("<tr") <= MAX_CREATORS + 1 + 500 + 1  # two tables and their heads
    assert page.count("o0") <= MAX_CREATORS * MAX_ORDER_IDS + 500
    extra_orders = case.orders_of_the_first - MAX_ORDER_IDS
    if extra_orders > 0:
        assert f"and {extra_orders} more" in page
    if case.creators > MAX_CREATORS:
        assert f"{case.creators - MAX_CREATORS} more creators change less" in page
