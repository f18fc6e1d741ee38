"""What the agencies earn on their creators never goes negative and never exceeds the
creators' own pay, at the most the terms allow (three levels whose shares sum to exactly
100 %), whatever the refunds, clawbacks, caps and arrival order: every override line nets
to 0 or more, every agency's period total is between 0 and its cap, and all overrides
together are at most the creators' pay (each level is rounded down, so never past its
share)."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, arrival, plan_versions, random_facts
from afflux.shared.core.journal.period import PeriodState
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.terms import TermsVersion

pytestmark = pytest.mark.unit

LEVELS = 3
AGENCIES = {  # creator-1's chain: 50 + 30 + 20 = 100 %; creator-2's: 70 + 30 = 100 %
    "creator-1": {"agency_id": "north", "share_percent": "50"},
    "north": {"agency_id": "group", "share_percent": "30"},
    "group": {"agency_id": "holding", "share_percent": "20"},
    "creator-2": {"agency_id": "south", "share_percent": "70"},
    "south": {"agency_id": "holding", "share_percent": "30"},
}
OWNERS = {"north", "group", "holding", "south"}


def versions(cap: int | None) -> tuple[TermsVersion, ...]:
    overrides = {"levels": LEVELS, "cap_minor": cap, "agencies": AGENCIES}
    return tuple(
        v.model_copy(
            update={
                "terms": v.terms.model_validate({**v.terms.model_dump(), "overrides": overrides})
            }
        )
        for v in plan_versions()
    )


def journal(seed: int, cap: int | None) -> list[Posting]:
    rng = random.Random(seed)
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions(cap))
    postings: list[Posting] = []
    for batch in arrival(random_facts(rng), rng):
        postings += state.step(batch).postings
    return postings


@pytest.mark.parametrize("cap", [None, 300], ids=["no cap", "cap 300"])
@pytest.mark.parametrize("seed", range(12))
def test_overrides_never_go_negative_nor_past_the_creators_pay(seed: int, cap: int | None) -> None:
    postings = journal(seed, cap)
    by_line: dict[str, int] = defaultdict(int)
    for p in postings:
        by_line[p.line_id] += p.amount_minor
    per_agency: dict[str, int] = defaultdict(int)
    for p in postings:
        if p.line_kind == "override":
            per_agency[p.affiliate_id] += p.amount_minor
    creator_lines = {p.line_id: p for p in postings if p.line_kind != "override"}
    overridden = [p for p in postings if p.line_kind == "override"]
    assert overridden, "the scenario must pay overrides"
    for line_id in {p.line_id for p in overridden}:
        net = by_line[line_id]
        assert net >= 0, f"override line {line_id} nets {net}"
    for agency, total in per_agency.items():
        assert agency in OWNERS
        assert total >= 0, f"{agency} nets {total} in overrides"
        if cap is not None:
            assert total <= cap, f"{agency} earns {total}, past its cap {cap}"
    creators_pay = sum(
        by_line[i] for i in creator_lines if creator_lines[i].affiliate_id in AGENCIES
    )
    overrides_pay = sum(per_agency.values())
    assert overrides_pay <= creators_pay, (overrides_pay, creators_pay)
