"""The what-if replay against the oracles: a seeded scenario's events replayed under a
draft pay every creator what the batch attribution oracle and the commission reference
give for the same events under the same draft, and the "current" side what they give
under the recorded history. The replay shares the services' core (choice, ledger step);
the oracles share none of it, so agreement checks the replay's wiring: which clicks an
order meets, the ranges, refunds, confirmations, periods, and what the ledger refuses."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from afflux.oracle import attribute, generate, reference_from_events
from afflux.shared.core.terms import CampaignTerms, CommissionPlan, TermsVersion
from afflux.shared.core.whatif.diff import draft_history, whatif
from afflux.shared.core.whatif.log import EVER, CampaignLog, DateRange
from afflux.shared.core.whatif.replay import replay
from afflux.shared.events import ClickRecorded, Envelope, OrderPlaced
from afflux.shared.whatif_decode import LogReader

pytestmark = pytest.mark.unit

PLAN = CommissionPlan.model_validate(
    {
        "sale": {"rate": {"percent": "8"}, "new_customer": {"percent": "12"}},
        "tiers": [
            {"from_sales": 3, "rate": {"percent": "10"}},
            {"from_sales": 6, "rate": {"percent": "12.5"}},
        ],
        "milestones": [{"at_sales": 4, "bonus_minor": 1000}],
        "lead_minor": 300,
        "actions_minor": {"install": 150},
        "base_fee_minor": 500,
        "click": {"per_click_minor": 7, "paid_click_cap": 5},
        "creator_cap_minor": 40_000,
        "campaign_budget_minor": 900_000,
    }
)


def with_plan(versions: Sequence[TermsVersion]) -> tuple[TermsVersion, ...]:
    return tuple(
        v.model_copy(update={"terms": v.terms.model_copy(update={"plan": PLAN})}) for v in versions
    )


def oracle_pay(
    events: Sequence[Envelope],
    campaign: str,
    versions: Sequence[TermsVersion],
    window: DateRange = EVER,
) -> dict[str, int]:
    """creator -> what the reference lines pay, from the attribution oracle's outputs."""
    result = attribute(events, {campaign: versions})
    clicks = [
        e
        for e in events
        if isinstance(e, ClickRecorded)
        and e.campaign_id == campaign
        and window.holds(e.occurred_at)
    ]
    lines = reference_from_events(
        [*result.conversions, *result.reversals, *clicks], {campaign: versions}
    )
    pay: dict[str, int] = defaultdict(int)
    for found in lines.values():
        for line in found:
            pay[line.affiliate_id] += line.pays_minor
    return {a: v for a, v in pay.items() if v}


def replay_log(events: Sequence[Envelope], campaign: str) -> CampaignLog:
    reader = LogReader(CampaignLog(campaign))
    for event in events:
        reader.item(event.model_dump(mode="json"))
    assert reader.skipped == 0
    return reader.log


def nonzero(pay: Mapping[str, int]) -> dict[str, int]:
    return {a: v for a, v in pay.items() if v}


DOUBLED_TIERS = tuple(
    t.model_copy(update={"rate": t.rate.model_copy(update={"percent": 2 * (t.rate.percent or 0)})})
    for t in PLAN.tiers
)


@dataclass(frozen=True)
class Draft:
    name: str
    changes: dict[str, Any]


DRAFTS = [
    Draft("first_click", {"model": "first_click"}),
    Draft("one_day_window", {"cookie_window_days": 1, "window_overrides_days": {}}),
    Draft("tier_rate_doubled", {"plan": PLAN.model_copy(update={"tiers": DOUBLED_TIERS})}),
    Draft("tight_creator_cap", {"plan": PLAN.model_copy(update={"creator_cap_minor": 1_500})}),
    Draft("coupons_last", {"precedence": ("click_id", "cookie", "coupon")}),
    Draft("weekly_periods", {"plan": PLAN.model_copy(update={"period": "week"})}),
]
SCENARIO = generate(11, visitors=400)
CAMPAIGNS = {c: with_plan(v) for c, v in SCENARIO.campaigns.items()}


@pytest.mark.parametrize("campaign", sorted(CAMPAIGNS))
def test_current_side_equals_the_oracle_under_the_recorded_history(campaign: str) -> None:
    log = replay_log(SCENARIO.events, campaign)
    got = nonzero(replay(log, CAMPAIGNS[campaign]).commission_by_creator())
    assert got == oracle_pay(SCENARIO.events, campaign, CAMPAIGNS[campaign])
    assert got, "the scenario pays someone"


@pytest.mark.parametrize("draft", DRAFTS, ids=lambda d: d.name)
@pytest.mark.parametrize("campaign", sorted(CAMPAIGNS))
def test_draft_side_equals_the_oracle_run_with_the_draft(campaign: str, draft: Draft) -> None:
    versions = CAMPAIGNS[campaign]
    latest = max(versions, key=lambda v: v.version).terms
    terms = CampaignTerms.model_validate(
        {**latest.model_dump(), **{k: v for k, v in draft.changes.items() if k != "plan"}}
        | ({"plan": draft.changes["plan"]} if "plan" in draft.changes else {})
    )
    log = replay_log(SCENARIO.events, campaign)
    diff = whatif(log, versions, terms)
    expected = oracle_pay(SCENARIO.events, campaign, draft_history(versions, terms))
    draft_pay = {c.affiliate_id: c.draft_minor for c in diff.creators}
    current = nonzero(replay(log, versions).commission_by_creator())
    # creators the diff leaves out are paid the same under both
    assert nonzero({**current, **draft_pay}) == expected
    assert diff.draft_total_minor == sum(expected.values())


@pytest.mark.parametrize(
    "aligned",
    [False, True],  # a range cutting through days (clicks counted one by one), whole days
)
def test_a_range_replays_its_orders_as_the_oracle_given_only_those_orders(aligned: bool) -> None:
    """Orders (and so their refunds and confirmations) in the range; every click may win
    them, but only the range's clicks are paid per click."""
    campaign = "acme-fashion"
    start = min(e.occurred_at for e in SCENARIO.events) + 2 * 86_400_000
    if aligned:
        start -= start % 86_400_000
    window = DateRange(start, start + 3 * 86_400_000)
    log = replay_log(SCENARIO.events, campaign)
    got = nonzero(replay(log, CAMPAIGNS[campaign], window).commission_by_creator())
    kept = [
        e for e in SCENARIO.events if not isinstance(e, OrderPlaced) or window.holds(e.occurred_at)
    ]
    assert got, "the range pays someone"
    assert got == oracle_pay(kept, campaign, CAMPAIGNS[campaign], window)
