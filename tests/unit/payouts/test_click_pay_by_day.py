"""Per-click pay is earned per UTC day: one line per creator and day, dated at the day's
last millisecond, so that the caps, which pay lines in (time, line id) order, never let
clicks made later take the room of a line dated before them (DESIGN §4)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.oracle.commission import balances, reference_lines
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ClickTally, ConversionFact
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.click_days import ClickDay, click_days
from afflux.shared.core.journal.period import ClickFigures, PeriodState, StepInput
from afflux.shared.core.journal.records import LineRecord, Posting
from afflux.shared.core.periods import day_of
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

START = 1_772_323_200_000  # 2026-03-01T00:00:00Z
DAY = MS_PER_DAY


def _day(n: int) -> int:
    """00:00 UTC of March ``n``."""
    return START + (n - 1) * DAY


def _versions(plan: dict[str, object], lock_days: int = 0) -> tuple[TermsVersion, ...]:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": lock_days,
            "plan": plan,
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


BUDGET_PLAN = {
    "sale": {"rate": {"percent": "10"}},
    "click": {"per_click_minor": 10},
    "campaign_budget_minor": 1_000,
}


def _sale(who: str, at: int, amount: int = 10_000) -> ConversionFact:
    return ConversionFact(
        f"conv-{who}", f"ev-{who}", f"order-{who}", who, "sale", None, amount, "EUR", False, at, 1
    )


def _approved(postings: list[Posting], who: str, as_of: int) -> int:
    return sum(p.amount_minor for p in postings if p.affiliate_id == who and p.approve_at <= as_of)


def test_later_clicks_never_cut_another_creators_approved_sale_under_the_budget() -> None:
    """ana's one click on the 1st, ben's sale on the 10th (approved at once: lock 0), then
    100 clicks of ana on the 20th: the budget left after ben's sale is all ana's clicks
    of the 20th get. Dated at ana's first click, they took ben's 990 back after it was
    approved (and paid by a run on the 11th)."""
    versions = _versions(BUDGET_PLAN)
    state = PeriodState("camp", "2026-03", "EUR", versions)
    sale = _sale("ben", _day(10) + 3_600_000)
    first = list(
        state.step(
            StepInput(
                clicks=(ClickFigures("ana", 1, _day(1), _day(1), ((_day(1), 1),)),),
                conversions=(sale,),
            )
        ).postings
    )
    assert _approved(first, "ben", _day(11)) == 990
    later = list(
        state.step(
            StepInput(
                clicks=(
                    ClickFigures("ana", 101, _day(1), _day(20), ((_day(1), 1), (_day(20), 100))),
                )
            )
        ).postings
    )

    assert [p for p in later if p.affiliate_id == "ben"] == []
    assert _approved(first + later, "ben", _day(31)) == 990
    assert _approved(first + later, "ana", _day(31)) == 10
    reference = reference_lines(
        "camp",
        "2026-03",
        [sale],
        [],
        {},
        [ClickTally("ana", 101, _day(1), ((_day(1), 1), (_day(20), 100)))],
        versions,
    )
    assert balances(reference, _day(31)) == {"ana": (0, 10), "ben": (0, 990)}


def test_a_click_on_the_day_of_a_sale_ranks_after_it_under_the_creator_cap() -> None:
    """Click pay of a day is dated at its end: a sale of the same creator that day comes
    first under the creator cap, whichever hour the clicks were made."""
    versions = _versions(
        {
            "sale": {"rate": {"fixed_minor": 300}},
            "click": {"per_click_minor": 100},
            "creator_cap_minor": 400,
        }
    )
    state = PeriodState("camp", "2026-03", "EUR", versions)
    result = state.step(
        StepInput(
            clicks=(ClickFigures("ana", 3, _day(5), _day(5) + 60_000, ((_day(5), 3),)),),
            conversions=(_sale("ana", _day(5) + 3_600_000),),
        )
    )
    by_kind = {r.kind: r for r in result.changed}
    assert (by_kind["sale"].paid, by_kind["click"].paid) == (300, 100)
    assert by_kind["click"].time == _day(6) - 1


@dataclass(frozen=True)
class Days:
    name: str
    per_day: tuple[tuple[int, int], ...]
    unique: int
    first_at: int
    cap: int | None
    expect: tuple[ClickDay, ...]


DAYS = [
    Days(
        "no cap: every day pays its clicks",
        ((_day(2), 3), (_day(1), 2)),
        5,
        _day(1),
        None,
        (ClickDay(_day(1), 2, 2, 0), ClickDay(_day(2), 3, 3, 2)),
    ),
    Days(
        "the cap is taken by the days in order",
        ((_day(1), 2), (_day(2), 3), (_day(3), 4)),
        9,
        _day(1),
        4,
        (ClickDay(_day(1), 2, 2, 0), ClickDay(_day(2), 3, 2, 2), ClickDay(_day(3), 4, 0, 4)),
    ),
    Days(
        "a cap reached exactly at a day's end leaves the next day nothing",
        ((_day(1), 2), (_day(2), 1)),
        3,
        _day(1),
        2,
        (ClickDay(_day(1), 2, 2, 0), ClickDay(_day(2), 1, 0, 2)),
    ),
    Days(
        "clicks counted before the days were kept fall on the first click's day",
        ((_day(4), 1),),
        4,
        _day(2) + 5,
        None,
        (ClickDay(_day(2), 3, 3, 0), ClickDay(_day(4), 1, 1, 3)),
    ),
]


@pytest.mark.parametrize("case", DAYS, ids=lambda c: c.name)
def test_click_days(case: Days) -> None:
    assert tuple(click_days(case.per_day, case.unique, case.first_at, case.cap)) == case.expect


@pytest.mark.parametrize(
    ("at", "date"),
    [(_day(2) - 1, "2026-03-01"), (_day(2), "2026-03-02")],
    ids=["last millisecond of the day", "first millisecond of the next"],
)
def test_a_click_is_paid_on_the_line_of_its_utc_day(at: int, date: str) -> None:
    state = PeriodState("camp", "2026-03", "EUR", _versions({"click": {"per_click_minor": 5}}))
    figures = ClickFigures("ana", 1, at, at, ((at - at % DAY, 1),))
    result = state.step(StepInput(clicks=(figures,)))
    [line] = [r for r in result.changed if r.kind == "click"]
    assert line.line_id == derived_id("line", "click", "camp", "2026-03", "ana", date)
    assert day_of(line.time) == date


def test_a_period_line_of_an_older_ledger_is_reversed_into_day_lines_with_the_same_money() -> None:
    """A ledger written before the day lines holds one click line for the period, at the
    first click: the next click of its creator takes it to zero (its postings reversed
    by a correction) and pays the same clicks on their days' lines."""
    versions = _versions({"click": {"per_click_minor": 5}})
    old_id = derived_id("line", "click", "camp", "2026-03", "ana")
    old = LineRecord(old_id, "ana", "click")
    old.gross = old.net = old.paid = old.creator_paid = 15
    old.time, old.approve_at = _day(3), _day(3)
    old.posted = {("accrual", _day(3)): (15, f"{old_id}.1")}
    old.postings = 1
    state = PeriodState.load(
        "camp",
        "2026-03",
        "EUR",
        versions,
        [old],
        [ClickFigures("ana", 3, _day(3), _day(4))],  # no days kept: all on the 3rd
        {},
        1,
    )

    result = state.step(
        StepInput(clicks=(ClickFigures("ana", 4, _day(3), _day(5), ((_day(5), 1),)),))
    )

    by_line: dict[str, int] = {}
    for p in result.postings:
        by_line[p.line_id] = by_line.get(p.line_id, 0) + p.amount_minor
    day3 = derived_id("line", "click", "camp", "2026-03", "ana", "2026-03-03")
    day5 = derived_id("line", "click", "camp", "2026-03", "ana", "2026-03-05")
    assert by_line == {old_id: -15, day3: 15, day5: 5}
    reversal = next(p for p in result.postings if p.line_id == old_id)
    assert reversal.corrects == f"{old_id}.1"
