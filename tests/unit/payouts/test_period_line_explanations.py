"""A period line whose explanation changes while its pay does not (a valid click past the
paid-click cap, a later click window, a content published before its stats) is among
the step's changed records, so the stored line says what the creator's clicks and
content are now, not what they were at the line's last posting."""

from __future__ import annotations

from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.engagement import Publication
from afflux.shared.core.journal.period import ClickFigures, PeriodState, StepInput
from afflux.shared.core.journal.records import LineRecord
from afflux.shared.core.periods import day_of
from afflux.shared.core.terms import CampaignTerms, TermsVersion

START = 1_772_323_200_000  # 2026-03-01T00:00:00Z
PERIOD = "2026-03"
HOUR = 3_600_000


def _state() -> PeriodState:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "plan": {
                "click": {"per_click_minor": 7, "paid_click_cap": 5},
                "engagement": {"values": {"like_minor": "1"}, "minimum_interactions": 10},
            },
        }
    )
    version = TermsVersion(version=1, effective_from=0, published_at=0, terms=terms)
    return PeriodState("camp", PERIOD, "EUR", (version,))


def _click_line(changed: tuple[LineRecord, ...]) -> LineRecord | None:
    return next((r for r in changed if r.kind == "click"), None)


def test_clicks_past_the_paid_click_cap_leave_the_paying_postings_words_true() -> None:
    state = _state()
    first = state.step(StepInput(clicks=(ClickFigures("anna", 5, START, START + HOUR),)))
    assert sum(p.amount_minor for p in first.postings) == 35
    words = (
        f"clicks of {day_of(START)}: 5 valid unique clicks paid at 7"
        " (paid-click cap 5 reached, 0 paid on earlier days)"
    )
    assert [p.rule for p in first.postings] == [words]

    more = state.step(StepInput(clicks=(ClickFigures("anna", 8, START, START + 2 * HOUR),)))

    # Nothing owed changes and the words need not: no posting, no line written.
    assert (more.postings, _click_line(more.changed)) == ((), None)
    line = state.lines[first.postings[0].line_id]
    assert line.rule == words
    assert line.sources == (f"clicks:{START}..{START + 86_400_000 - 1}",)


def test_clicks_under_the_paid_click_cap_are_counted_in_the_words() -> None:
    state = _state()
    first = state.step(StepInput(clicks=(ClickFigures("anna", 3, START, START + HOUR),)))

    assert [p.rule for p in first.postings] == [
        f"clicks of {day_of(START)}: 3 of 3 valid unique clicks at 7 (paid-click cap 5)"
    ]


def test_a_late_click_on_an_earlier_day_leaves_a_later_days_words_true() -> None:
    """The later day's pay is the same, so no posting: its words named "0 paid on earlier
    days" beside the earlier day's line paying one."""
    state = _state()
    day_two = START + 86_400_000
    later = state.step(
        StepInput(clicks=(ClickFigures("anna", 2, day_two, day_two + HOUR, ((day_two, 2),)),))
    ).postings
    (posting,) = later

    state.step(
        StepInput(
            clicks=(ClickFigures("anna", 3, START, day_two + HOUR, ((START, 1), (day_two, 2))),)
        )
    )

    assert state.lines[posting.line_id].rule == posting.rule


def test_the_same_click_figures_again_change_no_line() -> None:
    state = _state()
    figures = ClickFigures("anna", 6, START, START + HOUR)
    state.step(StepInput(clicks=(figures,)))

    again = state.step(StepInput(clicks=(figures,)))

    assert (again.postings, _click_line(again.changed)) == ((), None)


def test_a_content_published_before_its_stats_has_its_line_stored_at_zero() -> None:
    state = _state()
    publication = Publication("tiktok:v1", "anna", "camp", "video", START + HOUR, "pub-1")

    result = state.step(StepInput(content=(publication,)))

    assert result.postings == ()
    lines = [r for r in result.changed if r.kind == "engagement"]
    assert [(r.affiliate_id, r.paid, r.rule, r.sources) for r in lines] == [
        ("anna", 0, "engagement: no stats yet", ("pub-1",))
    ]


DAY = 24 * HOUR


def _fee_bonus_cap_state() -> PeriodState:
    """Version 1 (the period's: base fee 10.00, a bonus of 7.00 at 2 net sales, a creator
    cap of 12.00) and version 2 from March 10 (the same plan, a later version)."""
    plan: dict[str, object] = {
        "sale": {"rate": {"percent": "10"}},
        "base_fee_minor": 1000,
        "milestones": [{"at_sales": 2, "bonus_minor": 700}],
        "creator_cap_minor": 1200,
    }
    first = CampaignTerms.model_validate(
        {"campaign_id": "camp", "merchant_id": "m", "currency": "EUR", "plan": plan}
    )
    second = first.model_copy()
    return PeriodState(
        "camp",
        PERIOD,
        "EUR",
        (
            TermsVersion(version=1, effective_from=0, published_at=0, terms=first),
            TermsVersion(version=2, effective_from=START + 9 * DAY, published_at=0, terms=second),
        ),
    )


def _sale(n: int, at: int, amount: int, version: int) -> ConversionFact:
    return ConversionFact(
        f"conv-{n}", f"ev-{n}", f"order-{n}", "anna", "sale", None, amount, "EUR", False, at,
        version,
    )  # fmt: skip


def test_a_base_fee_names_the_sale_that_made_its_creator_active_and_moves_with_it() -> None:
    state = _fee_bonus_cap_state()
    first = state.step(StepInput(conversions=(_sale(1, START + 2 * DAY, 1000, 1),)))
    fee = [p for p in first.postings if p.line_kind == "base_fee"]
    assert [p.source_event_ids for p in fee] == [("ev-1",)]

    earlier = state.step(StepInput(conversions=(_sale(0, START + DAY, 1000, 1),)))

    moved = [p for p in earlier.postings if p.line_kind == "base_fee" and p.amount_minor > 0]
    assert [p.source_event_ids for p in moved] == [("ev-0",)]


def test_a_base_fee_of_clicks_alone_names_their_tally_window() -> None:
    state = _fee_bonus_cap_state()
    figures = ClickFigures("anna", 3, START + HOUR, START + 2 * HOUR)

    result = state.step(StepInput(clicks=(figures,)))

    [fee] = [p for p in result.postings if p.line_kind == "base_fee"]
    assert fee.source_event_ids == (f"clicks:{START + HOUR}..{START + 2 * HOUR}",)


def test_a_bonus_taken_back_names_the_sale_that_had_reached_it() -> None:
    state = _fee_bonus_cap_state()
    state.step(
        StepInput(conversions=(_sale(1, START + DAY, 1000, 1), _sale(2, START + 2 * DAY, 1000, 1)))
    )
    refund = RefundFact("rev-2", "ev-rev-2", "order-2", 1000, START + 3 * DAY, "conv-2", "refund")

    result = state.step(StepInput(refunds=(refund,)))

    [reversal] = [p for p in result.postings if p.line_kind == "bonus" and p.amount_minor < 0]
    assert reversal.source_event_ids == ("ev-2",)


def test_a_cap_cut_names_the_periods_terms_version_not_the_sales() -> None:
    state = _fee_bonus_cap_state()
    state.step(StepInput(conversions=(_sale(1, START + DAY, 1000, 1),)))  # fee 10.00 + 1.00

    late = state.step(StepInput(conversions=(_sale(2, START + 12 * DAY, 5000, 2),)))

    cuts = [p for p in late.postings if p.component.startswith("cap:")]
    assert cuts, "the second sale and the bonus go past the 12.00 cap"
    assert {p.terms_version for p in cuts} == {1}
    [accrual] = [p for p in late.postings if p.line_kind == "sale" and p.kind == "accrual"]
    assert accrual.terms_version == 2  # the sale itself was priced by version 2
