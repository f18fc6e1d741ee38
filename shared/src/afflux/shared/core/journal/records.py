"""What the journal keeps per line, and the postings it writes.

A ``LineRecord`` is one line's facts (its conversion, refunds, confirmation, or
the period figures behind a click, base-fee or bonus line), what the rules make
of them now (gross, net, what caps leave), and what has been posted so far per
component. A component is one part of what a line owes with its own approval
date: ``accrual``, ``refund`` (reduced before approval), ``clawback:<reversal>``
(taken back on or after approval, dated at the refund), ``cap:creator`` and
``cap:campaign`` (cut). The postings of a component always sum to its target, so
a line's postings sum to what it pays and never need rewriting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from operator import attrgetter
from typing import Any

from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.products import RefundItemRow

CONVERSION_KINDS = ("sale", "lead", "action")
PERIOD_KINDS = ("click", "base_fee", "bonus")


@dataclass(frozen=True, slots=True)
class RefundEntry:
    reversal_id: str
    event_id: str
    amount_minor: int
    occurred_at: int
    reason: str  # "refund" or "reattributed"
    items: tuple[RefundItemRow, ...] = ()  # the items the refund names


@dataclass(frozen=True, slots=True)
class Posting:
    """One immutable journal entry: a change to what a creator is owed, and why."""

    posting_id: str
    seq: int  # order within the campaign-period's journal (a read cursor)
    line_id: str
    affiliate_id: str
    campaign_id: str
    period: str
    currency: str
    kind: str  # accrual, tier_adjustment, refund_reduction, clawback, cap_cut, ...
    line_kind: str  # the line's: sale, lead, action, click, base_fee, bonus, engagement
    component: str
    amount_minor: int
    approve_at: int  # pending until then, approved from then on
    occurred_at: int  # the event time of the line (or of the refund, for a clawback)
    rule: str
    terms_version: int
    order_id: str | None = None
    source_event_ids: tuple[str, ...] = ()
    corrects: str | None = None  # the previous posting of the same component


@dataclass(slots=True)
class LineRecord:
    line_id: str
    affiliate_id: str
    kind: str  # sale, lead, action, click, base_fee, bonus, engagement; "" before a conversion
    time: int = 0
    approve_at: int = 0
    order_id: str | None = None
    conversion: ConversionFact | None = None
    refunds: tuple[RefundEntry, ...] = ()
    confirmation: str | None = None  # the lead confirmation's event id
    gross: int = 0
    net: int = 0  # gross less refunds: what caps see
    creator_paid: int = 0  # net less the creator cap's cut
    paid: int = 0  # less the campaign budget's cut: what the line pays
    rule: str = ""
    terms_version: int = 0
    sources: tuple[str, ...] = ()
    in_net_sales: bool = False
    in_activity: bool = False
    scope_key: tuple[int, str] | None = None  # where the cap scopes hold it
    posted: dict[tuple[str, int], tuple[int, str]] = field(default_factory=dict)
    postings: int = 0  # how many postings the line has (for their ids)
    # A sale with items: sku -> its exact commission per minor unit (refunds by item).
    item_rates: tuple[tuple[str, Fraction], ...] = ()
    # An agency override line: (creator line id, creator, level, share percent) and the
    # creator line's components it mirrors, (name, approve_at, amount).
    override: tuple[str, str, int, str] | None = None
    mirrored: tuple[tuple[str, int, int], ...] = ()
    # A review decision on a held conversion: (decision, event id, reason, by, at).
    review: tuple[str, str, str, str, int] | None = None
    held: tuple[str, ...] = ()  # the risk signals that hold the conversion for review
    # A renewal: its first order's hold and decision, (signals, review), when the first
    # order's line is known to the period (``review_lines.follow``).
    follows: tuple[tuple[str, ...], tuple[str, str, str, str, int] | None] | None = None


_CONVERSION_ROW = attrgetter(*ConversionFact.__slots__)  # the fact's fields, in order
_ITEMS = ConversionFact.__slots__.index("items")
_RISK_SIGNALS = ConversionFact.__slots__.index("risk_signals")


def record_to_json(record: LineRecord) -> dict[str, Any]:
    c = record.conversion
    data = {
        "id": record.line_id,
        "a": record.affiliate_id,
        "k": record.kind,
        "t": record.time,
        "L": record.approve_at,
        "o": record.order_id,
        "c": None if c is None else list(_CONVERSION_ROW(c)),
        "r": [
            [r.reversal_id, r.event_id, r.amount_minor, r.occurred_at, r.reason]
            + ([[list(i) for i in r.items]] if r.items else [])
            for r in record.refunds
        ],
        "cf": record.confirmation,
        "g": record.gross,
        "n": record.net,
        "pc": record.creator_paid,
        "p": record.paid,
        "rule": record.rule,
        "tv": record.terms_version,
        "src": list(record.sources),
        "ns": record.in_net_sales,
        "ac": record.in_activity,
        "sk": None if record.scope_key is None else list(record.scope_key),
        "ps": [[name, at, amount, last] for (name, at), (amount, last) in record.posted.items()],
        "np": record.postings,
    }
    # What most lines lack is left out (a batch writes every changed line).
    if record.item_rates:
        data["ir"] = [[sku, str(rate)] for sku, rate in record.item_rates]
    if record.override:
        data["ov"] = list(record.override)
    if record.mirrored:
        data["mo"] = [list(m) for m in record.mirrored]
    if record.review:
        data["rv"] = list(record.review)
    if record.held:
        data["hd"] = list(record.held)
    if record.follows is not None:
        signals, review = record.follows
        data["fo"] = [list(signals), None if review is None else list(review)]
    return data


def record_from_json(data: dict[str, Any]) -> LineRecord:
    c = data["c"]
    conversion = None if c is None else _conversion_from_row(c)
    return LineRecord(
        line_id=data["id"],
        affiliate_id=data["a"],
        kind=data["k"],
        time=data["t"],
        approve_at=data["L"],
        order_id=data["o"],
        conversion=conversion,
        refunds=tuple(_refund_from_row(r) for r in data["r"]),
        confirmation=data["cf"],
        gross=data["g"],
        net=data["n"],
        creator_paid=data["pc"],
        paid=data["p"],
        rule=data["rule"],
        terms_version=data["tv"],
        sources=tuple(data["src"]),
        in_net_sales=data["ns"],
        in_activity=data["ac"],
        scope_key=None if data["sk"] is None else (data["sk"][0], data["sk"][1]),
        posted={(name, at): (amount, last) for name, at, amount, last in data["ps"]},
        postings=data["np"],
        item_rates=tuple((sku, Fraction(rate)) for sku, rate in data.get("ir", ())),
        override=_override_from_row(data.get("ov")),
        mirrored=tuple((n, at, amount) for n, at, amount in data.get("mo", ())),
        review=_review_from_row(data.get("rv")),
        held=tuple(data.get("hd", ())),
        follows=_follows_from_row(data.get("fo")),
    )


def _follows_from_row(
    row: list[Any] | None,
) -> tuple[tuple[str, ...], tuple[str, str, str, str, int] | None] | None:
    return None if row is None else (tuple(row[0]), _review_from_row(row[1]))


def _override_from_row(row: list[Any] | None) -> tuple[str, str, int, str] | None:
    return None if not row else (row[0], row[1], row[2], row[3])


def _review_from_row(row: list[Any] | None) -> tuple[str, str, str, str, int] | None:
    return None if not row else (row[0], row[1], row[2], row[3], row[4])


def _conversion_from_row(row: list[Any]) -> ConversionFact:
    # JSON gave lists, empty ones too: the fact holds tuples (so a stored fact equals the
    # one decoded from its event, which the check for conflicting copies compares).
    # A row written before a field was added is shorter: the field keeps its default.
    row = list(row)
    if len(row) > _RISK_SIGNALS:
        row[_RISK_SIGNALS] = tuple(row[_RISK_SIGNALS])
    if len(row) > _ITEMS:
        row[_ITEMS] = tuple((s, c, q, u) for s, c, q, u in row[_ITEMS])
    return ConversionFact(*row)


def _refund_from_row(row: list[Any]) -> RefundEntry:
    items = tuple((sku, q, a) for sku, q, a in row[5]) if len(row) > 5 else ()
    return RefundEntry(row[0], row[1], row[2], row[3], row[4], items)


def posting_to_json(posting: Posting) -> dict[str, Any]:
    data = {name: getattr(posting, name) for name in Posting.__slots__}
    data["source_event_ids"] = list(posting.source_event_ids)
    return data


def posting_from_json(data: dict[str, Any]) -> Posting:
    values = dict(data)
    values["source_event_ids"] = tuple(values["source_event_ids"])
    return Posting(**values)
