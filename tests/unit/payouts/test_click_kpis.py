"""KPIs count valid and flagged clicks, per reason, from the ledger's click tallies."""

from __future__ import annotations

import pytest

from afflux.payouts.views import Counts, combine, kpi_row, tally

pytestmark = pytest.mark.unit

# What the ledger store writes for one creator: 10 non-bot clicks, 6 of them valid,
# 3 bots; flagged non-bot clicks by reason (one click was both duplicate and rate).
CLICKS = {
    "r|anna": "10",
    "u|anna": "6",
    "b|anna": "3",
    "x|anna|duplicate": "2",
    "x|anna|ip_duplicate": "1",
    "x|anna|rate": "1",
    "x|anna|embedded": "1",
    "f|anna": "1793491200000",
    "d|anna|2026-11-01": "10",
}


def counts(clicks: dict[str, str]) -> Counts:
    out: dict[str, Counts] = {}
    tally({}, clicks, "EUR", out)
    return out["anna"]


def test_valid_and_flagged_clicks_by_reason() -> None:
    row = kpi_row(counts(CLICKS))
    assert (row["clicks"], row["unique_clicks"], row["valid_clicks"]) == (10, 6, 6)
    assert row["flagged_clicks"] == 3 + 10 - 6  # bots and flagged non-bot clicks
    assert row["flagged_by_reason"] == {
        "bot": 3,
        "duplicate": 2,
        "ip_duplicate": 1,
        "rate": 1,
        "embedded": 1,
    }


def test_reasons_add_up_across_periods_and_an_unknown_reason_shows_as_other() -> None:
    later = {"r|anna": "1", "b|anna": "1", "x|anna|other": "1"}
    row = kpi_row(combine([counts(CLICKS), counts(later)]))
    assert row["flagged_clicks"] == 4 + 11 - 6
    assert row["flagged_by_reason"]["bot"] == 4
    assert row["flagged_by_reason"]["other"] == 1


def test_a_creator_without_flagged_clicks_lists_every_reason_at_zero() -> None:
    row = kpi_row(counts({"r|anna": "2", "u|anna": "2"}))
    assert row["flagged_clicks"] == 0
    assert set(row["flagged_by_reason"].values()) == {0}
    assert set(row["flagged_by_reason"]) == {"bot", "duplicate", "ip_duplicate", "rate", "embedded"}
