"""What one line owes under the rules, from its own facts (DESIGN §4).

Pure functions of a line's record and the terms: its gross, its reduction before
approval, its clawbacks, and the components those make. What depends on the
rest of the period (a sale's rank, the caps) comes in as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import apply_rate, describe_rate, sale_rate, version_by_number
from afflux.shared.core.journal.records import LineRecord, RefundEntry
from afflux.shared.core.money import percent_of
from afflux.shared.core.products import (
    price_sale,
    refund_by_items,
    refund_shares,
    round_half_up,
)
from afflux.shared.core.terms import TermsVersion

REATTRIBUTED = "reattributed"
# How a line taken back by a reattribution says why: a later click, a creator's live
# stream or a survey answer won the order (the line itself cannot tell which). Postings
# written before 2026-12-08 say "reattributed to another click"; readers match both.
REATTRIBUTED_RULE = "reattributed: a later click, stream or survey answer won the order"
OLD_REATTRIBUTED_RULE = "reattributed to another click"
CLAWED_BACK = ("sale", "renewal")  # the kinds a refund after approval takes back from


@dataclass(frozen=True, slots=True)
class Reductions:
    before_approval: int  # the "refund" component (positive: what it takes)
    clawbacks: tuple[tuple[RefundEntry, int], ...]  # each on/after approval, what it takes
    notes: tuple[str, ...]

    def total(self) -> int:
        return self.before_approval + sum(back for _, back in self.clawbacks)


def conversion_gross(
    record: LineRecord, versions: Sequence[TermsVersion], rank: int | None
) -> tuple[int, str] | None:
    """The line's gross and its rule, or None when the conversion earns no line."""
    c = record.conversion
    assert c is not None
    terms = version_by_number(versions, c.terms_version).terms
    plan = terms.plan
    if c.kind == "sale":
        if plan.sale is None:
            return None
        rate, why = sale_rate(plan, c.new_customer, rank)
        if c.items or c.non_commissionable_minor:
            pricing = price_sale(
                plan.sale.products, rate, why, c.amount_minor, c.items, c.non_commissionable_minor
            )
            record.item_rates = pricing.per_unit  # what a refund by item takes back
            return pricing.gross, pricing.rule()
        return apply_rate(rate, c.amount_minor), (
            f"sale: {describe_rate(rate)} of {c.amount_minor} ({why})"
        )
    if c.kind == "renewal":
        if plan.recurring is None:
            return None
        rate = plan.recurring.rate
        return apply_rate(rate, c.amount_minor), (
            f"renewal {c.renewal_number}: {describe_rate(rate)} of {c.amount_minor}"
            " (recurring rate)"
        )
    if c.kind == "lead":
        if plan.lead_minor is None:
            return None
        if terms.lead_confirmation_required:
            if record.confirmation is None:
                return None
            return plan.lead_minor, f"lead: fixed {plan.lead_minor} (confirmed)"
        return plan.lead_minor, f"lead: fixed {plan.lead_minor}"
    action = c.action or c.kind
    if action not in plan.actions_minor:
        return None
    return plan.actions_minor[action], f"action {action}: fixed {plan.actions_minor[action]}"


def survey_reduced(
    priced: tuple[int, str] | None, record: LineRecord, versions: Sequence[TermsVersion]
) -> tuple[int, str] | None:
    """A conversion the survey attributed, under terms that pay survey-attributed orders a
    reduced rate (``survey.mode: reduced_rate``): that percent of the gross it would
    earn otherwise. Any other conversion is priced as it was."""
    c = record.conversion
    if priced is None or c is None or c.attributed_by != "survey":
        return priced
    survey = version_by_number(versions, c.terms_version).terms.survey
    if survey is None or survey.mode != "reduced_rate" or survey.reduced_rate_percent is None:
        return priced
    gross, rule = priced
    percent = survey.reduced_rate_percent
    return percent_of(gross, percent), f"{rule}; survey-attributed: {percent}% of {gross}"


def lock_ms(versions: Sequence[TermsVersion], terms_version: int) -> int:
    return version_by_number(versions, terms_version).terms.lock_days * MS_PER_DAY


def applied_refunds(record: LineRecord) -> tuple[int, ...]:
    """What each of the line's refunds takes of its order, in event-time order (the
    order ``record.refunds`` is kept in): what it asked for, capped at what the earlier
    ones left. The attribution worker caps refunds the same way but as they arrive, so
    refunds adding up to more than their order were capped by which came first; the
    journal keeps what each asked for (``ledger_facts.refund_fact``) and caps here, so
    the money is the same in any arrival order, and, refunds arriving in date order,
    the same as the worker's."""
    c = record.conversion
    left = c.amount_minor if c is not None else 0
    out: list[int] = []
    for refund in record.refunds:
        taken = max(0, min(refund.amount_minor, left))
        left -= taken
        out.append(taken)
    return tuple(out)


def reductions(record: LineRecord) -> Reductions:
    """Refunds before approval reduce the line pro rata; on or after approval a sale
    (or any reattributed conversion) is clawed back, on the cumulative refund so
    rounding never takes more than the line has."""
    c = record.conversion
    gross, approve_at = record.gross, record.approve_at
    if c is None or gross <= 0 or not record.refunds:  # most lines: nothing to reduce
        return Reductions(0, (), ())
    whole = c.amount_minor
    applied = applied_refunds(record)
    # Each refund's share of the line: its amount over the order's, or, naming items that
    # make up its amount, its items' share of the commission (afflux.shared.core.products).
    shares = refund_shares(
        whole,
        c.items,
        record.item_rates,
        [(a, r.items) for a, r in zip(applied, record.refunds, strict=True)],
        c.non_commissionable_minor,
    )
    before, before_minor, by_item = Fraction(0), 0, False
    notes: list[str] = []
    for refund, share, amount in zip(record.refunds, shares, applied, strict=True):
        if refund.occurred_at >= approve_at:
            continue
        if refund.reason == REATTRIBUTED:
            return Reductions(gross, (), (f"{REATTRIBUTED_RULE}, before approval",))
        before += share
        before_minor += amount
        by_item = by_item or refund_by_items(
            amount, c.items, c.non_commissionable_minor, refund.items
        )
    before = min(Fraction(1), before)
    taken = round_half_up(gross * before)
    if taken:
        notes.append(
            f"refunded {min(whole, before_minor)} of {whole} before approval"
            + (" (pro rata per item)" if by_item else "")
        )
    remaining = 1 - before
    base = gross - taken
    clawed: list[tuple[RefundEntry, int]] = []
    so_far = 0
    refunded_after = Fraction(0)
    for refund, share in zip(record.refunds, shares, strict=True):
        if refund.occurred_at < approve_at:
            continue
        if refund.reason == REATTRIBUTED:
            if base - so_far > 0:
                clawed.append((refund, base - so_far))
                so_far = base
            break
        if record.kind not in CLAWED_BACK or remaining <= 0:
            continue
        refunded_after = min(remaining, refunded_after + share)
        back = round_half_up(base * refunded_after / remaining) - so_far
        if back > 0:
            clawed.append((refund, back))
            so_far += back
    return Reductions(taken, tuple(clawed), tuple(notes))


def is_superseded(record: LineRecord) -> bool:
    return any(r.reason == REATTRIBUTED for r in record.refunds)


def is_net_sale(record: LineRecord, period_end: int) -> bool:
    """A current sale not refunded in full before the period's end."""
    c = record.conversion
    if c is None or c.kind != "sale" or is_superseded(record):
        return False
    refunded = sum(r.amount_minor for r in record.refunds if r.occurred_at < period_end)
    return not (c.amount_minor > 0 and refunded >= c.amount_minor)


def components(record: LineRecord) -> dict[tuple[str, int], int]:
    """(component, approve_at) -> what it must sum to, zeros left out."""
    out: dict[tuple[str, int], int] = {}
    at = record.approve_at
    if record.gross:
        out[("accrual", at)] = record.gross
    cuts = reductions(record) if record.conversion is not None else Reductions(0, (), ())
    if cuts.before_approval:
        out[("refund", at)] = -cuts.before_approval
    for refund, back in cuts.clawbacks:
        out[(f"clawback:{refund.reversal_id}", refund.occurred_at)] = -back
    if record.net - record.creator_paid:
        out[("cap:creator", at)] = -(record.net - record.creator_paid)
    if record.creator_paid - record.paid:
        out[("cap:campaign", at)] = -(record.creator_paid - record.paid)
    return out
