"""The read models over postings and counters: balances, lines, KPIs, page parameters."""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace

import pytest

from afflux.payouts.queries import (
    MAX_CURSOR_CHARS,
    cursor_within,
    decode_cursor,
    encode_cursor,
    limit,
)
from afflux.payouts.reads import Position
from afflux.payouts.views import Counts, PeriodSums, balances, line_views, tally, totals
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.problems import Problem

pytestmark = pytest.mark.unit

L = 1_000  # the line's approval time
REFUND = 5_000  # a refund after approval

ACCRUAL = Posting(
    posting_id="p1",
    seq=1,
    line_id="line-1",
    affiliate_id="anna",
    campaign_id="acme",
    period="2026-11",
    currency="EUR",
    kind="accrual",
    line_kind="sale",
    component="accrual",
    amount_minor=1000,
    approve_at=L,
    occurred_at=100,
    rule="sale: fixed 1000 of 10000 (base rate)",
    terms_version=1,
    order_id="o-1",
    source_event_ids=("ev-1",),
)
CUT = replace(
    ACCRUAL, posting_id="p2", seq=2, kind="cap_cut", component="cap:creator", amount_minor=-400
)
RELEASE = replace(CUT, posting_id="p3", seq=5, kind="cap_release", amount_minor=400)
CLAWBACK = replace(
    ACCRUAL,
    posting_id="p4",
    seq=6,
    kind="clawback",
    component="clawback:rev-1",
    amount_minor=-1000,
    approve_at=REFUND,
    occurred_at=REFUND,
    rule="clawback: refund of 10000 after approval",
    source_event_ids=("ev-1", "ev-rev-1"),
)
OTHER = replace(ACCRUAL, posting_id="p5", seq=3, line_id="line-2", order_id="o-2")


def test_a_balance_adds_periods_and_takes_payouts_off_approved() -> None:
    sums = [
        PeriodSums("EUR", total=2000, reversed=1000, pending=500),
        PeriodSums("EUR", total=700, reversed=0, pending=0),
        PeriodSums("USD", total=300, reversed=0, pending=300),
    ]
    assert balances(sums, {"EUR": 2500}) == [
        # approved 1500 + 700 - 2500 paid: negative, netted in the next payout
        {
            "currency": "EUR",
            "pending_minor": 500,
            "approved_minor": -300,
            "paid_minor": 2500,
            "reversed_minor": 1000,
        },
        {
            "currency": "USD",
            "pending_minor": 300,
            "approved_minor": 0,
            "paid_minor": 0,
            "reversed_minor": 0,
        },
    ]


@dataclass(frozen=True)
class LineCase:
    as_of: int
    status: str
    pending: int
    approved: int


# The line nets to nothing with its clawback: "refunded" at every as_of (it read
# "pending" or "approved": money that never comes, read as to come or as had).
LINE_CASES = [
    LineCase(L - 1, "refunded", 0, 0),  # 1 ms before approval: all pending (nets to 0)
    LineCase(L, "refunded", -1000, 1000),  # at approval: the clawback is still pending
    LineCase(REFUND, "refunded", 0, 0),  # at the refund: clawed back
]


@pytest.mark.parametrize("case", LINE_CASES, ids=lambda c: str(c.as_of))
def test_a_line_sums_its_postings_and_splits_them_at_as_of(case: LineCase) -> None:
    [line, other] = line_views([ACCRUAL, CUT, OTHER, RELEASE, CLAWBACK], case.as_of)
    assert (line["line_id"], other["line_id"]) == ("line-1", "line-2")
    assert line["amount_minor"] == 0
    assert (line["status"], line["pending_minor"], line["approved_minor"]) == (
        case.status,
        case.pending,
        case.approved,
    )
    assert line["posting_ids"] == ["p1", "p2", "p3", "p4"]
    assert line["rule"] == ACCRUAL.rule  # the accrual's, not the clawback's
    assert line["occurred_at"] == 100  # the line's time, not the refund's
    assert line["explain"]["gross_minor"] == 1000
    assert line["explain"]["refunded_minor"] == 1000
    assert line["explain"]["cap_cuts"] == []  # cut, then released in full
    assert line["explain"]["source_event_ids"] == ["ev-1", "ev-rev-1"]


def test_a_cut_not_released_shows_as_a_cap_cut() -> None:
    [line] = line_views([ACCRUAL, CUT], L)
    assert line["amount_minor"] == 600
    assert line["explain"]["cap_cuts"] == [{"scope": "creator", "cut_minor": 400}]


def test_totals_split_pending_and_approved_per_currency() -> None:
    assert totals([ACCRUAL, CUT, CLAWBACK, OTHER], L) == [
        {"currency": "EUR", "amount_minor": 600, "pending_minor": -1000, "approved_minor": 1600}
    ]


def test_kpis_come_from_the_counters_per_creator_and_day() -> None:
    kpis = {
        "conversions|anna": "3",
        "conversions|anna|2026-11-01": "2",
        "conversions|anna|2026-11-02": "1",
        "sales|anna": "2",
        "revenue|anna": "20000",
        "refunds|anna": "5000",
        "new_customers|anna": "1",
        "commission|anna": "1500",
        "commission|anna|2026-11-01": "2000",
        "commission|anna|2026-11-13": "-500",
        "later_counter|anna": "9",  # a counter this reader does not know: ignored
    }
    out: dict[str, Counts] = {}
    tally(kpis, {"d|anna|2026-11-01": "4", "r|anna": "4", "u|anna": "4"}, "EUR", out)
    anna = out["anna"]
    assert (anna.conversions, anna.sales, anna.revenue, anna.refunds) == (3, 2, 20000, 5000)
    assert (anna.new_customers, anna.commission, anna.clicks) == (1, 1500, 4)
    assert anna.days == {
        "2026-11-01": {"clicks": 4, "conversions": 2, "commission_minor": 2000},
        "2026-11-02": {"conversions": 1},
        "2026-11-13": {"commission_minor": -500},
    }


def test_a_cursor_names_the_position_it_was_made_from() -> None:
    position = Position("acme", "2026-W47", 12)
    cursor = encode_cursor(position)
    assert cursor is not None
    assert decode_cursor(cursor) == position
    assert encode_cursor(None) is None
    assert decode_cursor(None) is None


def test_the_longest_cursor_this_api_makes_is_read_back() -> None:
    # A campaign id of 200 characters beyond the BMP (12 escaped characters each in the
    # JSON) and the largest seq: under the length bound, so never refused for its size.
    position = Position("\U0001f600" * 200, "2026-W47", 2**63 - 1)
    cursor = encode_cursor(position)
    assert cursor is not None
    assert len(cursor) <= MAX_CURSOR_CHARS
    assert decode_cursor(cursor) == position


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",  # not base64
        "bm90IGpzb24",  # base64 of "not json"
        "WyJhIiwiYiJd",  # ["a","b"]: no seq
        "WyJhIiwiYiIsIjEiXQ",  # ["a","b","1"]: seq not a number
        "WyJhIiwiYiIsdHJ1ZV0",  # ["a","b",true]: a boolean is no seq
        b64(b'["a","b",1.5]'),  # a fraction is no seq
        b64(b'["a","b",NaN]'),  # nor NaN, which Python's parser reads
        b64(b'["a","b",-1]'),  # below any seq
        b64(b'["a","b",' + b"1" + b"0" * 30 + b"]"),  # past a 64-bit seq
        b64(b'["a","b",' + b"9" * 400 + b"]"),  # a number too long to parse cheaply
        b64(b"[" * 5000 + b"]" * 5000),  # 5,000 deep answered 500 (RecursionError): too long
        b64(b"[" * 1500 + b"]" * 1500),  # short enough, but nested far too deep
        b64(b'{"a":' * 500 + b"1" + b"}" * 500),  # objects nest as deep
        b64(b"[" * 33 + b'"a","b",1' + b"]" * 33),  # one level past what is read at all
        b64(b'[["a","b",1]]'),  # the right values one level down: not ours
        b64(b'["' + b"a" * 3100 + b'","2026-11",1]'),  # well-formed, longer than ours
        "W" * (MAX_CURSOR_CHARS + 1),  # longer than any cursor, refused before decoding
        "WyJhIiwiYiIsMV0\u00e9",  # a character base64 has not
        b64(b"\xff\xfe\x00["),  # bytes that are no text
    ],
)
def test_a_cursor_this_api_never_answered_is_422_on_cursor(cursor: str) -> None:
    with pytest.raises(Problem) as refused:
        decode_cursor(cursor)
    assert (refused.value.status, refused.value.field) == (422, "cursor")


def directory_of(campaign_id: str) -> CampaignDirectory:
    terms = CampaignTerms.model_validate(
        {"campaign_id": campaign_id, "merchant_id": "m", "currency": "EUR"}
    )
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id=campaign_id,
            versions=(TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),),
        )
    )
    return directory


@dataclass(frozen=True)
class ForeignCursor:
    position: Position
    campaign: str | None = None  # the query's campaign_id
    period: str | None = None  # and period


@pytest.mark.parametrize(
    "case",
    [
        ForeignCursor(Position("acme", "2026-13", 1)),  # no 13th month
        ForeignCursor(Position("acme", "not-a-period", 1)),
        ForeignCursor(Position("acme", "2026-W54", 1)),  # no 54th week
        ForeignCursor(Position("acme", "2026-W47", 1)),  # a week of a monthly campaign
        ForeignCursor(Position("no-such-campaign", "2026-11", 1)),
        ForeignCursor(Position("acme", "2026-11", 1), campaign="beta"),  # another query's
        ForeignCursor(Position("acme", "2026-11", 1), period="2026-10"),
    ],
    ids=lambda c: f"{c.position.campaign_id}/{c.position.period}/{c.campaign}/{c.period}",
)
def test_a_cursor_of_an_unknown_campaign_period_or_another_query_is_422_on_cursor(
    case: ForeignCursor,
) -> None:
    """Answered before as an empty last page, which a client cannot tell from the end."""
    cursor = encode_cursor(case.position)
    with pytest.raises(Problem) as refused:
        decode_cursor(cursor, directory_of("acme"), case.campaign, case.period)
    assert (refused.value.status, refused.value.field) == (422, "cursor")


@pytest.mark.parametrize(
    ("campaign", "period"), [(None, None), ("acme", None), (None, "2026-11"), ("acme", "2026-11")]
)
def test_a_cursor_of_a_known_campaign_and_the_same_query_is_read(
    campaign: str | None, period: str | None
) -> None:
    position = Position("acme", "2026-11", 12)
    assert decode_cursor(encode_cursor(position), directory_of("acme"), campaign, period) == (
        position
    )


@pytest.mark.parametrize("period", ["2026-W47", "2026-12"])
def test_a_cursor_of_either_cadence_a_campaign_has_had_is_read(period: str) -> None:
    """Weekly until December, monthly since: its weeks and its months are both periods."""
    weekly, monthly = (
        CampaignTerms.model_validate(
            {"campaign_id": "acme", "merchant_id": "m", "currency": "EUR", "plan": {"period": p}}
        )
        for p in ("week", "month")
    )
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id="acme",
            versions=(
                TermsVersion(version=1, effective_from=0, published_at=0, terms=weekly),
                TermsVersion(
                    version=2, effective_from=1_796_083_200_000, published_at=0, terms=monthly
                ),
            ),
        )
    )
    position = Position("acme", period, 3)
    assert decode_cursor(encode_cursor(position), directory) == position


def test_brackets_inside_a_cursors_strings_are_not_nesting() -> None:
    position = Position("[" * 100 + "{", "2026-11", 3)
    assert decode_cursor(encode_cursor(position)) == position


@dataclass(frozen=True)
class LimitCase:
    value: str | None
    expected: int | None  # None: refused


LIMIT_CASES = [
    LimitCase(None, 100),  # absent: the default page
    LimitCase("", 100),
    LimitCase("0", None),  # below the smallest page
    LimitCase("1", 1),  # the smallest page
    LimitCase("1000", 1000),  # the largest page
    LimitCase("1001", None),  # above it
    LimitCase("-5", None),
    LimitCase("٣", None),  # a digit, but not an ASCII one
    LimitCase("9" * 4301, None),  # past int()'s 4,300 digits: a 422, not a 500
    LimitCase("0" * 4300 + "7", 7),  # leading zeros are the number, however many
]


@pytest.mark.parametrize("case", LIMIT_CASES, ids=lambda c: repr(c.value)[:12])
def test_a_page_size_is_from_1_to_1000(case: LimitCase) -> None:
    if case.expected is None:
        with pytest.raises(Problem) as refused:
            limit(case.value)
        assert (refused.value.status, refused.value.field) == (422, "limit")
    else:
        assert limit(case.value) == case.expected


@pytest.mark.parametrize(
    "position",
    [
        Position("globex", "2026-W49", 0),  # another brand's campaign, of its cadence
        Position("globex", "2026-12", 0),  # of the other cadence
        Position("acme", "2026-10", 3),  # the reader's campaign, a period it has nothing in
    ],
    ids=lambda p: f"{p.campaign_id}/{p.period}",
)
def test_a_cursor_outside_the_readers_campaign_periods_is_the_same_422(position: Position) -> None:
    """A creator's crafted cursor naming another brand's campaign was answered 200 or 422
    by that campaign's cadence: it told the creator the campaign exists and how it pays."""
    readers = [("acme", "2026-11"), ("acme", "2026-12")]
    with pytest.raises(Problem) as refused:
        cursor_within(position, readers)
    assert (refused.value.status, refused.value.field, refused.value.reason) == (
        422,
        "cursor",
        "not a cursor this API answered",
    )


def test_a_cursor_of_the_readers_campaign_periods_is_taken() -> None:
    cursor_within(Position("acme", "2026-11", 12), [("acme", "2026-11")])
    cursor_within(None, [])


def test_a_line_declined_in_review_reads_declined_and_one_still_paying_its_date() -> None:
    declined = replace(
        CLAWBACK, posting_id="p9", kind="review_decline", component="accrual", rule="declined"
    )
    assert line_views([ACCRUAL, declined], L)[0]["status"] == "declined"
    assert line_views([ACCRUAL], L - 1)[0]["status"] == "pending"
    assert line_views([ACCRUAL], L)[0]["status"] == "approved"


def test_a_line_a_partial_refund_and_a_cap_cut_took_to_nothing_is_not_refunded() -> None:
    """It may still be paid (room freed, an approval): "refunded" read as settled."""
    partial = replace(
        CLAWBACK, posting_id="p8", kind="refund_reduction", component="refund", amount_minor=-250
    )
    cut = replace(CUT, posting_id="p9", amount_minor=-750)
    assert line_views([ACCRUAL, partial, cut], L - 1)[0]["status"] == "pending"


def test_an_agencys_override_of_a_declined_line_reads_declined_too() -> None:
    override = replace(ACCRUAL, posting_id="o1", line_id="override-1", line_kind="override")
    reversed_ = replace(
        override,
        posting_id="o2",
        kind="override_correction",
        amount_minor=-1000,
        approve_at=2**53 - 1,
        rule="override reversed: ana's sale line declined in review by merchant:m: fraud",
    )
    assert line_views([override, reversed_], L)[0]["status"] == "declined"


@pytest.mark.parametrize(
    "said",
    [
        "reattributed: a later click, stream or survey answer won the order, before approval",
        "reattributed to another click",  # as postings written before 2026-12-08 say it
    ],
)
def test_a_line_reattributed_before_approval_reads_reattributed_not_refunded(said: str) -> None:
    moved = replace(
        CLAWBACK,
        posting_id="p7",
        kind="refund_reduction",
        component="refund",
        rule=f"reduced before approval: sale: 10% of 10000; {said}",
    )
    assert line_views([ACCRUAL, moved], L - 1)[0]["status"] == "reattributed"
