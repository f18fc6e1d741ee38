"""The ledger's hot-path encodings write exactly what the journal's readers expect."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest

from afflux.payouts.store import posting_json
from afflux.payouts.tallies import ClickItem, count_clicks, figures
from afflux.shared.core.journal.records import Posting, posting_from_json, posting_to_json

pytestmark = pytest.mark.unit


def posting(**changes: object) -> Posting:
    values: dict[str, object] = {
        "posting_id": "line-1.2",
        "seq": 7,
        "line_id": "line-1",
        "affiliate_id": "anna",
        "campaign_id": "shop",
        "period": "2026-11",
        "currency": "EUR",
        "kind": "accrual",
        "line_kind": "sale",
        "component": "accrual",
        "amount_minor": 1250,
        "approve_at": 1_793_491_200_000,
        "occurred_at": 1_792_281_600_000,
        "rule": "8 % of 156.25 €",
        "terms_version": 1,
    }
    return Posting(**(values | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "stored",
    [
        posting(),  # no order, no sources, corrects nothing: the nulls and the empty list
        posting(order_id="o-1", source_event_ids=("e1", "e2"), corrects="line-1.1"),
        posting(amount_minor=-(2**62), kind="clawback"),  # a large negative amount
    ],
)
def test_a_posting_is_stored_as_posting_to_json_writes_it(stored: Posting) -> None:
    text = posting_json(stored)
    assert text.encode() == orjson.dumps(posting_to_json(stored))
    assert posting_from_json(orjson.loads(text)) == stored


@dataclass(frozen=True)
class Case:
    clicks: list[ClickItem]
    tally: dict[str, str]


def click(at: int, *reasons: str, content: str = "") -> ClickItem:
    return ClickItem("shop", "2026-11", f"k{at}", "anna", at, reasons, content)


DAY = "2026-11-01"
T = 1_793_491_200_000  # 2026-11-01T00:00:00Z

CASES = [
    # a bot is counted as a bot only: no day, no first or last time
    Case([click(T, "bot")], {"b|anna": "1"}),
    # a flagged non-bot click counts per reason (an unknown one as other), not as unique
    Case(
        [click(T, "rate", "newer")],
        {"r|anna": "1", f"d|anna|{DAY}": "1", "x|anna|rate": "1", "x|anna|other": "1"},
    ),
    # valid clicks out of order: the first and last times are the earliest and latest
    Case(
        [click(T + 5), click(T + 1), click(T + 9, content="instagram:P1")],
        {
            "r|anna": "3",
            f"d|anna|{DAY}": "3",
            "u|anna": "3",
            "f|anna": str(T + 1),
            "l|anna": str(T + 9),
            "c|anna|instagram:P1": "1",
            "cn|anna": "1",  # contents with a field of their own
            f"v|anna|{T}": "3",
            "vd|anna": str(T),
        },
    ),
    # valid clicks on two days, the later one first: each day counted, the days listed
    Case(
        [click(T + 86_400_000 + 7), click(T + 3), click(T + 86_400_000 + 8)],
        {
            "r|anna": "3",
            f"d|anna|{DAY}": "1",
            "d|anna|2026-11-02": "2",
            "u|anna": "3",
            "f|anna": str(T + 3),
            "l|anna": str(T + 86_400_008),
            f"v|anna|{T}": "1",
            f"v|anna|{T + 86_400_000}": "2",
            "vd|anna": f"{T + 86_400_000} {T}",
        },
    ),
]


def test_clicks_counted_before_the_days_were_kept_stay_on_their_first_clicks_day() -> None:
    """A tally of an older ledger has no days: its clicks are pinned to the day of its
    first click as it stands, before a late click made earlier moves that first click
    (and with it, left unpinned, every older click to the late click's day)."""
    later = T + 4 * 86_400_000
    tally = {"r|anna": "3", "u|anna": "3", "f|anna": str(later + 5), "l|anna": str(later + 9)}

    touched, _ = count_clicks(tally, [click(T + 1)])

    assert figures(tally, "anna").per_day == ((T, 1), (later, 3))
    assert {f"v|anna|{later}", f"v|anna|{T}", "vd|anna"} <= touched


@pytest.mark.parametrize("case", CASES)
def test_click_tallies(case: Case) -> None:
    tally: dict[str, str] = {}
    touched, valid = count_clicks(tally, case.clicks)
    assert tally == case.tally
    assert touched == set(case.tally)
    assert valid == ({"anna"} if "u|anna" in case.tally else set())


def test_click_tallies_keep_the_earlier_first_and_later_last_time_already_counted() -> None:
    tally = {"u|anna": "2", "f|anna": str(T + 3), "l|anna": str(T + 4)}
    count_clicks(tally, [click(T + 2), click(T + 8)])
    assert (tally["f|anna"], tally["l|anna"], tally["u|anna"]) == (str(T + 2), str(T + 8), "4")
    count_clicks(tally, [click(T + 5)])  # inside the span: neither end moves
    assert (tally["f|anna"], tally["l|anna"]) == (str(T + 2), str(T + 8))
