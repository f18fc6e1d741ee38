"""The statement CSV: one row per posting, and no cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace

import pytest
from tests.unit.payouts.test_explain import BASE, REFUND, T0

from afflux.payouts.statement_csv import (
    COLUMNS,
    csv_filename,
    decimal_amount,
    neutralise,
    statement_csv,
)

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Cell:
    given: str
    shown: str


CELLS = [
    Cell('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),  # a formula
    Cell("+1+2", "'+1+2"),  # a plus starts a formula
    Cell("-2+3", "'-2+3"),  # a minus too, unless it is just a number
    Cell("@SUM(A1)", "'@SUM(A1)"),  # an at-sign
    Cell("\tx", "'\tx"),  # a tab before a formula
    Cell("\r=1", "'\r=1"),  # a carriage return
    Cell("-25.00", "-25.00"),  # a negative amount stays a number
    Cell("-7", "-7"),  # so does a negative whole number
    Cell("-7\n", "'-7\n"),  # but not with a newline after it: that is text
    Cell("-\u0667", "'-\u0667"),  # nor in other digits (Arabic-Indic seven)
    Cell("-\uff17.\uff10", "'-\uff17.\uff10"),  # or fullwidth ones
    Cell("o_123", "o_123"),  # ordinary text is untouched
    Cell("a=b", "a=b"),  # only the first character matters
    Cell("", ""),  # an empty cell
]


@pytest.mark.parametrize("cell", CELLS, ids=[repr(c.given) for c in CELLS])
def test_cells_that_start_a_formula_are_neutralised(cell: Cell) -> None:
    assert neutralise(cell.given) == cell.shown


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (4999, "EUR", "49.99"),
        (-250, "EUR", "-2.50"),
        (-5, "EUR", "-0.05"),
        (5000, "JPY", "5000"),
        (1, "KWD", "0.001"),
    ],
)
def test_amounts_are_in_major_units(minor: int, currency: str, shown: str) -> None:
    assert decimal_amount(minor, currency) == shown


def test_one_row_per_posting_with_a_hostile_order_id_neutralised() -> None:
    hostile = replace(REFUND, order_id="=cmd|' /C calc'!A0")
    text = statement_csv([BASE, hostile], T0)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(COLUMNS)
    assert len(rows) == 3
    first = dict(zip(COLUMNS, rows[1], strict=True))
    assert first["posting_id"] == "l1.1"
    assert first["amount"] == "5.00"
    assert first["amount_minor"] == "500"
    assert first["status"] == "pending"
    assert first["date"] == "2026-11-25"
    assert first["explanation"] == "10 % of 49.99 EUR (base rate)"
    second = dict(zip(COLUMNS, rows[2], strict=True))
    assert second["order_id"] == "'=cmd|' /C calc'!A0"
    assert second["amount"] == "-2.50"


@pytest.mark.parametrize(
    ("affiliate_id", "name"),
    [
        ("creator-07", "statement-creator-07-2026-12.csv"),
        ("ana rosa/../x", "statement-ana_rosa_.._x-2026-12.csv"),
        # a creator id a merchant's survey answer named: not latin-1, the header answered 500
        ("创作者", "statement-___-2026-12.csv"),
        ("josé", "statement-jos_-2026-12.csv"),
    ],
)
def test_the_download_is_named_in_plain_ascii(affiliate_id: str, name: str) -> None:
    assert csv_filename(affiliate_id, "2026-12") == name
