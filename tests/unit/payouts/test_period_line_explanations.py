"""A period line whose explanation changes while its pay does not (a valid click past the
paid-click cap, a later click window, a content published before its stats) is among
the step's changed records, so the stored line says what the creator's clicks and
content are now, not what they were at the line's last posting."""

from __future__ import annotations

from afflux.shared.core.engagement import Publication
from afflux.shared.core.journal.period import ClickFigures, PeriodState, StepInput
from afflux.shared.core.journal.records import LineRecord
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


def test_a_valid_click_past_the_paid_click_cap_rewrites_the_lines_explanation() -> None:
    state = _state()
    first = state.step(StepInput(clicks=(ClickFigures("anna", 5, START, START + HOUR),)))
    assert sum(p.amount_minor for p in first.postings) == 35

    sixth = state.step(StepInput(clicks=(ClickFigures("anna", 6, START, START + 2 * HOUR),)))

    assert sixth.postings == ()  # the cap pays five: nothing owed changes
    line = _click_line(sixth.changed)
    assert line is not None, "the click line's new explanation would not be stored"
    assert line.rule == "clicks: 5 of 6 valid unique clicks at 7 (paid-click cap 5)"
    assert line.sources == (f"clicks:{START}..{START + 2 * HOUR}",)


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
