"""The KPI counters count conversions by how their order was attributed (link, code,
live stream, survey), as long as the conversion is the order's current one."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.journal.records import record_from_json, record_to_json
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

NOV_2 = 1_793_577_600_000  # 2026-11-02T00:00:00Z
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "shop",
        "merchant_id": "m",
        "currency": "EUR",
        "plan": {"sale": {"rate": {"percent": "10"}}},
    }
)
VERSIONS = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)


def sale(order: str, rule: str, creator: str = "ana") -> ConversionFact:
    return ConversionFact(
        f"conv-{order}",
        f"ev-{order}",
        order,
        creator,
        "sale",
        None,
        5_000,
        "EUR",
        False,
        NOV_2,
        1,
        attributed_by=rule,
    )


def by_rule(*batches: StepInput) -> Counter[str]:
    state = PeriodState("shop", "2026-11", "EUR", VERSIONS)
    total: Counter[str] = Counter()
    for batch in batches:
        total.update(state.step(batch).kpis)
    return Counter({k: v for k, v in total.items() if k.startswith("attributed|") and v})


def test_each_rule_is_counted_per_creator() -> None:
    conversions = (sale("o1", "click_id"), sale("o2", "livestream"), sale("o3", "livestream"))
    assert by_rule(StepInput(conversions=(*conversions, sale("o4", "survey", "ben")))) == Counter(
        {"attributed|ana|click_id": 1, "attributed|ana|livestream": 2, "attributed|ben|survey": 1}
    )


def test_a_conversion_replaced_by_a_correction_counts_no_more() -> None:
    live = sale("o1", "livestream")
    taken = RefundFact("rev-1", "ev-rev-1", "o1", 5_000, NOV_2 + 1, "conv-o1", "reattributed")
    late = replace(sale("o1", "click_id", "ben"), conversion_id="conv-o1b", event_id="ev-o1b")
    counted = by_rule(
        StepInput(conversions=(live,)), StepInput(conversions=(late,), refunds=(taken,))
    )
    assert counted == Counter({"attributed|ben|click_id": 1})


def test_facts_stored_before_the_rule_was_kept_still_load_and_count_under_no_rule() -> None:
    state = PeriodState("shop", "2026-11", "EUR", VERSIONS)
    [record] = state.step(StepInput(conversions=(sale("o1", "coupon"),))).changed
    stored = record_to_json(record)
    stored["c"] = stored["c"][: ConversionFact.__slots__.index("attributed_by")]  # older fields
    assert record_from_json(stored).conversion == replace(record.conversion, attributed_by="")
