"""A creator's statement as CSV (pure): one row per posting, safe to open in a spreadsheet.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some,
a tab or carriage return) as a formula, so an id or a reason a merchant or creator
chose ("=HYPERLINK(...)") could run on the reader's machine. Such a cell gets a
leading ``'``, which spreadsheets show as text. A plain decimal number ("-25.00")
cannot be a formula and stays a number.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

from afflux.payouts.views import status
from afflux.shared.core.journal.explain import day, explain_posting
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.money import CURRENCY_EXPONENTS

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# ASCII digits, matched in full: "-1\n" or "-١٢" is text, so it is neutralised too.
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
COLUMNS = (
    "posting_id",
    "date",
    "campaign_id",
    "period",
    "order_id",
    "line_kind",
    "kind",
    "amount",
    "currency",
    "amount_minor",
    "status",
    "approve_on",
    "terms_version",
    "explanation",
)


def neutralise(cell: str) -> str:
    """``cell`` as a spreadsheet shows it and never runs it."""
    if cell.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def decimal_amount(amount_minor: int, currency: str) -> str:
    exponent = CURRENCY_EXPONENTS.get(currency, 0)
    if exponent == 0:
        return str(amount_minor)
    sign = "-" if amount_minor < 0 else ""
    whole, part = divmod(abs(amount_minor), 10**exponent)
    return f"{sign}{whole}.{part:0{exponent}d}"


def posting_row(posting: Posting, as_of: int) -> list[str]:
    return [
        posting.posting_id,
        day(posting.occurred_at),
        posting.campaign_id,
        posting.period,
        posting.order_id or "",
        posting.line_kind,
        posting.kind,
        decimal_amount(posting.amount_minor, posting.currency),
        posting.currency,
        str(posting.amount_minor),
        status(posting.approve_at, as_of),
        day(posting.approve_at),
        str(posting.terms_version),
        explain_posting(posting),
    ]


def statement_csv(postings: Iterable[Posting], as_of: int) -> str:
    """The header, then one row per posting, every cell neutralised."""
    rows: Sequence[Sequence[str]] = [COLUMNS, *(posting_row(p, as_of) for p in postings)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return out.getvalue()


def csv_filename(affiliate_id: str, period: str) -> str:
    """The download's file name: ASCII letters, digits, ``-``, ``_`` and ``.`` only, as an
    HTTP header carries latin-1 alone (a creator id such as ``创作者``, which a merchant's
    survey answer may name, made the download a 500)."""
    name = f"statement-{affiliate_id}-{period}.csv"
    return "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in name)
