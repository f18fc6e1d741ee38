"""A journal line reads in plain words: amounts in the currency's units, the order, the
terms version, then each change (refund, clawback, cap) and what it pays, when."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from afflux.payouts.views import line_views
from afflux.shared.core.journal.explain import explain_line, explain_posting, rule_in_words
from afflux.shared.core.journal.records import Posting

pytestmark = pytest.mark.unit

DAY = 86_400_000
T0 = 1_795_564_800_000  # 2026-11-25T00:00:00Z
BASE = Posting(
    posting_id="l1.1",
    seq=1,
    line_id="l1",
    affiliate_id="c1",
    campaign_id="camp",
    period="2026-11",
    currency="EUR",
    kind="accrual",
    line_kind="sale",
    component="accrual",
    amount_minor=500,
    approve_at=T0 + 30 * DAY,
    occurred_at=T0,
    rule="sale: 10% of 4999 (base rate)",
    terms_version=3,
    order_id="o_123",
)


@dataclass(frozen=True)
class RuleCase:
    rule: str
    currency: str
    words: str


RULES = [
    # a percentage sale: the order amount in major units
    RuleCase("sale: 10% of 4999 (base rate)", "EUR", "10 % of 49.99 EUR (base rate)"),
    # a fixed sale commission
    RuleCase(
        "sale: fixed 700 of 4999 (base rate)", "EUR", "a fixed 7.00 EUR of 49.99 EUR (base rate)"
    ),
    # a currency without minor units
    RuleCase(
        "sale: 12.5% of 5000 (new-customer rate)", "JPY", "12.5 % of 5,000 JPY (new-customer rate)"
    ),
    # held for review: the review's words follow the rule, its amounts still in money
    RuleCase(
        "sale: 10% of 9876543210 (base rate); held for review (self_referral): pending until"
        " approved",
        "KWD",
        "10 % of 9,876,543.210 KWD (base rate); held for review (self_referral): pending until"
        " approved",
    ),
    RuleCase(
        "sale: 10% of 1234567890 (base rate); approved in review by merchant:m1 (same_ip)",
        "EUR",
        "10 % of 12,345,678.90 EUR (base rate); approved in review by merchant:m1 (same_ip)",
    ),
    # a confirmed lead
    RuleCase("lead: fixed 250 (confirmed)", "USD", "2.50 USD per lead, confirmed"),
    # an action
    RuleCase("action signup: fixed 100", "EUR", "1.00 EUR for the action 'signup'"),
    # click pay under a paid-click cap
    RuleCase(
        "clicks: 120 of 130 valid unique clicks at 5 (paid-click cap 120)",
        "EUR",
        "120 of 130 valid unique clicks at 0.05 EUR each (at most 120 clicks paid)",
    ),
    # a day's click pay under a paid-click cap
    RuleCase(
        "clicks of 2026-03-20: 2 of 9 valid unique clicks at 10"
        " (paid-click cap 5, 3 paid on earlier days)",
        "EUR",
        "2 of 9 valid unique clicks on 2026-03-20 at 0.10 EUR each"
        " (at most 5 clicks paid in the period, 3 on earlier days)",
    ),
    # a day's click pay once the paid-click cap is used up: what is paid, not the count
    RuleCase(
        "clicks of 2026-03-20: 2 valid unique clicks paid at 10"
        " (paid-click cap 5 reached, 3 paid on earlier days)",
        "EUR",
        "2 valid unique clicks paid on 2026-03-20 at 0.10 EUR each"
        " (the period's cap of 5 paid clicks reached, 3 paid on earlier days)",
    ),
    RuleCase(
        "clicks of 2026-03-20: 1 valid unique clicks paid at 10"
        " (paid-click cap 5 reached, 4 paid on earlier days)",
        "EUR",
        "1 valid unique click paid on 2026-03-20 at 0.10 EUR each"
        " (the period's cap of 5 paid clicks reached, 4 paid on earlier days)",
    ),
    # a day's click pay under the cap (the earlier days' count left out since 2026-12-07)
    RuleCase(
        "clicks of 2026-03-20: 2 of 2 valid unique clicks at 10 (paid-click cap 5)",
        "EUR",
        "2 of 2 valid unique clicks on 2026-03-20 at 0.10 EUR each"
        " (at most 5 clicks paid in the period)",
    ),
    # a day's click pay without a cap
    RuleCase(
        "clicks of 2026-03-01: 3 of 3 valid unique clicks at 5",
        "EUR",
        "3 of 3 valid unique clicks on 2026-03-01 at 0.05 EUR each",
    ),
    # a sale whose refund came before approval: the note in money too
    RuleCase(
        "sale: 15% of 25000 (tier from net sale 3); refunded 10000 of 25000 before approval",
        "EUR",
        "15 % of 250.00 EUR (tier from net sale 3); refunded 100.00 EUR of 250.00 EUR before"
        " approval",
    ),
    RuleCase(
        "sale: 10% of 2780 (base rate); refunded 2780 of 2780 before approval (pro rata per"
        " item), re-ranked (was 417)",
        "EUR",
        "10 % of 27.80 EUR (base rate); refunded 27.80 EUR of 27.80 EUR before approval (pro"
        " rata per item), re-ranked among the period's sales (was 4.17 EUR)",
    ),
    # corrections, read where a page of postings holds them without their accrual
    RuleCase(
        "clawback: refund of 10000 after approval",
        "EUR",
        "clawback: refund of 100.00 EUR after approval",
    ),
    RuleCase(
        "reduced before approval: sale: 10% of 8000 (base rate); refunded 3000 of 8000 before"
        " approval",
        "USD",
        "reduced before approval: 10 % of 80.00 USD (base rate); refunded 30.00 USD of 80.00"
        " USD before approval",
    ),
    # approved in review after a refund before approval: the note in money too
    RuleCase(
        "sale: 20% of 8000 (tier from net sale 3); approved in review by merchant:m"
        " (self_referral); refunded 3000 of 8000 before approval",
        "EUR",
        "20 % of 80.00 EUR (tier from net sale 3); approved in review by merchant:m"
        " (self_referral); refunded 30.00 EUR of 80.00 EUR before approval",
    ),
    # a base fee
    RuleCase("base fee 10000 for the period", "EUR", "base fee of 100.00 EUR for the period"),
    # a re-ranked sale keeps its rate's words and says what it was
    RuleCase(
        "sale: 12% of 1000 (tier from net sale 3), re-ranked (was 100)",
        "EUR",
        "12 % of 10.00 EUR (tier from net sale 3), re-ranked among the "
        "period's sales (was 1.00 EUR)",
    ),
    # a sale priced per item: each rate with its share, what was excluded or not commissionable
    RuleCase(
        "sale: 12.5% of 2000 (sku shoe-1), 8% of 1000 (base rate); excluded 495;"
        " 500 non-commissionable",
        "EUR",
        "12.5 % of 20.00 EUR (sku shoe-1), 8 % of 10.00 EUR (base rate); 4.95 EUR excluded;"
        " 5.00 EUR not commissionable",
    ),
    # a sale without items but with shipping named
    RuleCase(
        "sale: 8% of 4500 (base rate); 499 non-commissionable",
        "EUR",
        "8 % of 45.00 EUR (base rate); 4.99 EUR not commissionable",
    ),
    # a renewal at the recurring rate
    RuleCase(
        "renewal 3: 20% of 1999 (recurring rate)",
        "EUR",
        "20 % of 19.99 EUR (recurring rate, renewal 3)",
    ),
    # engagement: values per interaction and amounts in the currency's units
    RuleCase(
        "engagement at snapshot 3 (as of 2026-11-01T03:00:00Z): 512 likes \u00d7 0.5"
        " + 1,200 views \u00d7 4 per 1,000 = 260, capped at 200 per content (was 250)",
        "EUR",
        "engagement at snapshot 3 (as of 2026-11-01T03:00:00Z): 512 likes \u00d7 0.005 EUR"
        " + 1,200 views \u00d7 0.04 EUR per 1,000 = 2.60 EUR, capped at 2.00 EUR per content"
        " (was 2.50 EUR)",
    ),
    # a survey-attributed sale at a reduced rate: it read "8% of 4999" in minor units
    RuleCase(
        "sale: 8% of 4999 (base rate); survey-attributed: 50% of 400",
        "KWD",
        "8 % of 4.999 KWD (base rate); survey-attributed: 50 % of 0.400 KWD",
    ),
    RuleCase(
        "lead: fixed 500; survey-attributed: 50% of 500",
        "EUR",
        "5.00 EUR per lead; survey-attributed: 50 % of 5.00 EUR",
    ),
    RuleCase(
        "sale: 8% of 4999 (base rate); survey-attributed: 50% of 400;"
        " refunded 1000 of 4999 before approval",
        "EUR",
        "8 % of 49.99 EUR (base rate); survey-attributed: 50 % of 4.00 EUR;"
        " refunded 10.00 EUR of 49.99 EUR before approval",
    ),
    # a rule the reader does not know stays as written
    RuleCase("milestone bonus at 10 net sales", "EUR", "milestone bonus at 10 net sales"),
]


@pytest.mark.parametrize("case", RULES, ids=[c.rule[:30] for c in RULES])
def test_rule_reads_in_the_currency_units(case: RuleCase) -> None:
    assert rule_in_words(case.rule, case.currency) == case.words


@dataclass(frozen=True)
class LineCase:
    name: str
    postings: tuple[Posting, ...]
    as_of: int
    words: str


REFUND = replace(
    BASE,
    posting_id="l1.2",
    seq=2,
    kind="refund_reduction",
    component="refund",
    amount_minor=-250,
    rule="reduced before approval: sale: 10% of 4999 (base rate)",
)
CLAWBACK = replace(
    BASE,
    posting_id="l1.3",
    seq=3,
    kind="clawback",
    component="clawback:r1",
    amount_minor=-100,
    approve_at=T0 + 40 * DAY,
    occurred_at=T0 + 40 * DAY,
    rule="clawback: refund of 1000 after approval",
)
CAP = replace(
    BASE,
    posting_id="l1.4",
    seq=4,
    kind="cap_cut",
    component="cap:creator",
    amount_minor=-50,
    rule="cut: the creator cap is used up by earlier lines of the period",
)

LINES = [
    # just earned: pending until its approval day
    LineCase(
        "pending sale",
        (BASE,),
        T0,
        "10 % of 49.99 EUR (base rate), order o_123, terms v3; pays 5.00 EUR, pending until "
        "2026-12-25",
    ),
    # the approval day itself counts as approved
    LineCase(
        "approved on its day",
        (BASE,),
        T0 + 30 * DAY,
        "10 % of 49.99 EUR (base rate), order o_123, terms v3; pays 5.00 EUR, approved on "
        "2026-12-25",
    ),
    # a refund before approval, then a clawback after it, then a cap cut
    LineCase(
        "refund, clawback and cap",
        (BASE, REFUND, CLAWBACK, CAP),
        T0 + 41 * DAY,
        "10 % of 49.99 EUR (base rate), order o_123, terms v3; reduced by 2.50 EUR before "
        "approval (refund); taken back 1.00 EUR: refund on 2027-01-04, after approval; cut by "
        "0.50 EUR (the creator's cap); pays 1.00 EUR, approved on 2026-12-25",
    ),
    # the line lowered after the clawback (re-ranked): the clawback is corrected upward,
    # and the line says what was taken back in the end, once (it read as 1.00 + 0.40
    # taken back, the correction giving 0.40 back worded as more taken)
    LineCase(
        "clawback lowered later",
        (
            BASE,
            CLAWBACK,
            replace(
                BASE,
                posting_id="l1.4",
                seq=4,
                amount_minor=-200,
                corrects="l1.1",
                rule="sale: 6% of 4999 (base rate), re-ranked (was 500)",
            ),
            replace(CLAWBACK, posting_id="l1.5", seq=5, amount_minor=40, corrects="l1.3"),
        ),
        T0 + 41 * DAY,
        "6 % of 49.99 EUR (base rate), re-ranked among the period's sales (was 5.00 EUR), "
        "order o_123, terms v3; taken back 0.60 EUR: refund on 2027-01-04, after approval; "
        "pays 2.40 EUR, approved on 2026-12-25",
    ),
    # the cap cut, the line's last posting, carries the version the period opened under
    # (1): the line is still of the version that priced it (it read "terms v1" beside a
    # rate only version 3 had)
    LineCase(
        "cap cut of the period's version last",
        (BASE, replace(CAP, terms_version=1)),
        T0,
        "10 % of 49.99 EUR (base rate), order o_123, terms v3; cut by 0.50 EUR (the "
        "creator's cap); pays 4.50 EUR, pending until 2026-12-25",
    ),
    # a period line has no order
    LineCase(
        "click pay",
        (
            replace(
                BASE,
                line_kind="click",
                kind="click_pay",
                order_id=None,
                rule="clicks: 3 of 3 valid unique clicks at 5",
                amount_minor=15,
            ),
        ),
        T0,
        "3 of 3 valid unique clicks at 0.05 EUR each, terms v3; pays 0.15 EUR, pending until "
        "2026-12-25",
    ),
]


@pytest.mark.parametrize("case", LINES, ids=[c.name for c in LINES])
def test_line_reads_in_plain_words(case: LineCase) -> None:
    assert explain_line(case.postings, case.as_of) == case.words


def test_each_posting_says_its_part() -> None:
    assert explain_posting(BASE) == "10 % of 49.99 EUR (base rate)"
    assert explain_posting(REFUND) == "reduced by 2.50 EUR before approval (refund)"
    assert explain_posting(CLAWBACK) == "taken back 1.00 EUR: refund on 2027-01-04, after approval"
    assert explain_posting(CAP) == "cut by 0.50 EUR: the creator's cap was used up by earlier lines"
    given_back = replace(CLAWBACK, amount_minor=40, corrects="l1.3", posting_id="l1.6")
    assert explain_posting(given_back) == (
        "0.40 EUR given back: the refund on 2027-01-04 takes back less than first posted"
    )
    reattributed = replace(
        given_back, rule="clawback: reattributed to another click after approval"
    )
    assert explain_posting(reattributed) == (
        "0.40 EUR given back: the reattribution on 2027-01-04 takes back less than first posted"
    )
    correction = replace(BASE, amount_minor=-100, corrects="l1.1", posting_id="l1.5")
    assert explain_posting(correction) == "correction of -1.00 EUR: 10 % of 49.99 EUR (base rate)"


def test_a_line_without_postings_says_nothing() -> None:
    assert explain_line((), T0) == ""


def test_a_lines_terms_version_is_the_one_that_priced_it_not_its_last_postings() -> None:
    """``explain.terms_version`` of the ledger and statement answers said 1 beside a rate
    only version 3 had, when a cap cut of the period's version came last."""
    [line] = line_views((BASE, replace(CAP, terms_version=1)), T0)
    assert line["explain"]["terms_version"] == 3


NOTED = "sale: 10% of 4999 (base rate); refunded 2500 of 4999 before approval"


@pytest.mark.parametrize(
    "accrual_rule",
    [
        "sale: 10% of 4999 (base rate)",  # posted before its refund arrived (live)
        NOTED,  # posted with it known, both in one batch (a rebuild)
    ],
)
def test_a_line_refunded_before_approval_reads_the_same_whatever_the_arrival_order(
    accrual_rule: str,
) -> None:
    """After a rebuild the refund's note was in the line's rule and the reduction both,
    live only in the reduction: the same line read differently."""
    line = (
        replace(BASE, rule=accrual_rule),
        replace(REFUND, rule="reduced before approval: " + NOTED),
    )
    assert explain_line(line, T0) == (
        "10 % of 49.99 EUR (base rate); refunded 25.00 EUR of 49.99 EUR before approval, "
        "order o_123, terms v3; reduced by 2.50 EUR before approval (refund); pays 2.50 EUR, "
        "pending until 2026-12-25"
    )


def test_a_clawback_priced_per_item_says_so() -> None:
    by_item = replace(CLAWBACK, rule="clawback: refund of 1000 after approval (pro rata per item)")
    assert explain_posting(by_item) == (
        "taken back 1.00 EUR: refund on 2027-01-04, after approval (pro rata per item)"
    )
    assert rule_in_words(by_item.rule, "EUR") == (
        "clawback: refund of 10.00 EUR after approval (pro rata per item)"
    )


def test_a_re_ranked_line_refunded_before_approval_keeps_the_re_rank_in_money() -> None:
    """The refund's note put after the re-rank's words hid them from their reading:
    "re-ranked (was 500)" read as 500 EUR."""
    line = (
        BASE,
        replace(
            BASE,
            posting_id="l1.2",
            seq=2,
            amount_minor=-200,
            corrects="l1.1",
            rule="sale: 6% of 4999 (base rate), re-ranked (was 500)",
        ),
        replace(
            REFUND,
            posting_id="l1.3",
            seq=3,
            amount_minor=-150,
            rule="reduced before approval: " + NOTED,
        ),
    )
    assert explain_line(line, T0) == (
        "6 % of 49.99 EUR (base rate); refunded 25.00 EUR of 49.99 EUR before approval, "
        "re-ranked among the period's sales (was 5.00 EUR), order o_123, terms v3; reduced "
        "by 1.50 EUR before approval (refund); pays 1.50 EUR, pending until 2026-12-25"
    )


def test_a_reviewed_line_re_ranked_after_its_decision_reads_the_re_rank_in_money() -> None:
    rule = (
        "sale: 6% of 4999 (base rate); approved in review by merchant:m (self_referral); "
        "refunded 1000 of 4999 before approval, re-ranked (was 300)"
    )
    assert rule_in_words(rule, "EUR") == (
        "6 % of 49.99 EUR (base rate); approved in review by merchant:m (self_referral); "
        "refunded 10.00 EUR of 49.99 EUR before approval, re-ranked among the period's "
        "sales (was 3.00 EUR)"
    )


HELD = 2**53 - 1
OVERRIDE_RULE = (
    "override: 15% of ana's sale line (agency agx); held for review (self_referral): pending"
    " until approved"
)
HELD_OVERRIDE = replace(
    BASE,
    posting_id="o1.1",
    line_id="o1",
    affiliate_id="agx",
    kind="override",
    line_kind="override",
    amount_minor=150,
    approve_at=HELD,
    rule=OVERRIDE_RULE,
)


def test_an_agencys_override_of_an_approved_line_reads_approved_not_awaiting_a_decision() -> None:
    """Approved, the override is accrued at its real date and its held accrual taken back
    by a correction dated as held, posted after it: the line read "pending until a review
    decision", even once paid."""
    approved_at = T0 + 3 * DAY
    accrued = replace(
        HELD_OVERRIDE,
        posting_id="o1.2",
        seq=2,
        approve_at=approved_at,
        rule="override: 15% of ana's sale line (agency agx); approved in review by admin",
    )
    taken_back = replace(
        HELD_OVERRIDE, posting_id="o1.3", seq=3, kind="override_correction", amount_minor=-150
    )
    postings = [HELD_OVERRIDE, accrued, taken_back]

    words = explain_line(postings, approved_at + DAY)
    (view,) = line_views(postings, approved_at + DAY)

    assert words.endswith("pays 1.50 EUR, approved on 2026-11-28"), words
    assert "review decision" not in words
    assert (view["status"], view["approve_at"], view["approved_minor"]) == (
        "approved",
        approved_at,
        150,
    )


def test_an_agencys_override_of_a_declined_line_reads_declined() -> None:
    reversed_ = replace(
        HELD_OVERRIDE,
        posting_id="o1.2",
        seq=2,
        kind="override_correction",
        amount_minor=-150,
        rule="override reversed: ana's sale line declined in review by admin (self_referral):"
        " fraud",
    )
    words = explain_line([HELD_OVERRIDE, reversed_], T0 + DAY)
    (view,) = line_views([HELD_OVERRIDE, reversed_], T0 + DAY)

    assert "declined in review by admin (self_referral): fraud" in words
    assert words.endswith("pays 0.00 EUR, declined in review on 2026-11-25"), words
    assert view["status"] == "declined"


def test_an_override_cut_by_the_agencys_cap_names_the_cut() -> None:
    accrued = replace(HELD_OVERRIDE, approve_at=T0, rule="override: 20% of cara's sale line")
    cut = replace(
        accrued,
        posting_id="o1.2",
        seq=2,
        kind="cap_cut",
        component="cap:override",
        amount_minor=-54,
        rule="cut: the agency's override cap is used up by earlier overrides of the period",
    )

    words = explain_line([accrued, cut], T0)

    assert "cut by 0.54 EUR (the agency's override cap)" in words, words
    assert words.endswith("pays 0.96 EUR, approved on 2026-11-25"), words
