"""A journal line in plain words, from its postings (pure).

The journal's rules name amounts in minor units ("sale: 10% of 4999 (base rate)");
a creator reads "10 % of 49.99 EUR (base rate), order o_123, terms v3; reduced by
25.00 EUR before approval (refund)". ``explain_line`` says what a line's postings
amount to, in the order they change it; ``explain_posting`` says one posting's part.
Dates are UTC days.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from afflux.shared.core.journal.override_lines import REVERSED_BY_DECLINE
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.money import CURRENCY_EXPONENTS, Money
from afflux.shared.core.overrides import OVERRIDE_CAP
from afflux.shared.core.review import HELD_UNTIL


def money(amount_minor: int, currency: str) -> str:
    """``4999, EUR`` -> ``49.99 EUR`` (a code without a known exponent keeps minor units)."""
    if currency not in CURRENCY_EXPONENTS:
        return f"{amount_minor} {currency} (minor units)"
    return Money(amount_minor, currency).format()


def day(ms: int) -> str:
    if ms >= HELD_UNTIL:  # a conversion held for review: no date until a decision
        return "a review decision"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


Rewrite = Callable[[re.Match[str], str], str]


def _rate(rate: str, currency: str) -> str:
    if rate.startswith("fixed "):
        return f"a fixed {money(int(rate[6:]), currency)}"
    return rate.replace("%", " %")


# The rules' wording (afflux.shared.core.journal.rules and .period), read back.
_RULES: tuple[tuple[re.Pattern[str], Rewrite], ...] = (
    (  # a sale priced per item: several rates, or a part left out
        re.compile(r"^sale: (.*(?:\), \d|; excluded |\d non-commissionable|no commissionable).*)$"),
        lambda m, c: _items_in_words(m[1], c),
    ),
    (
        re.compile(r"^sale: (\d+(?:\.\d+)?%|fixed -?\d+) of (-?\d+) \((.+)\)$"),
        lambda m, c: f"{_rate(m[1], c)} of {money(int(m[2]), c)} ({m[3]})",
    ),
    (
        re.compile(r"^renewal (\d+): (\d+(?:\.\d+)?%|fixed -?\d+) of (-?\d+) \(recurring rate\)$"),
        lambda m, c: f"{_rate(m[2], c)} of {money(int(m[3]), c)} (recurring rate, renewal {m[1]})",
    ),
    (
        re.compile(r"^lead: fixed (-?\d+)( \(confirmed\))?$"),
        lambda m, c: f"{money(int(m[1]), c)} per lead" + (", confirmed" if m[2] else ""),
    ),
    (
        re.compile(r"^action (.+): fixed (-?\d+)$"),
        lambda m, c: f"{money(int(m[2]), c)} for the action {m[1]!r}",
    ),
    (
        re.compile(
            r"^clicks: (\d+) of (\d+) valid unique clicks at (-?\d+)( \(paid-click cap (\d+)\))?$"
        ),
        lambda m, c: (
            f"{m[1]} of {m[2]} valid unique clicks at {money(int(m[3]), c)} each"
            + (f" (at most {m[5]} clicks paid)" if m[4] else "")
        ),
    ),
    (
        re.compile(
            r"^clicks of (\d{4}-\d\d-\d\d): (\d+) of (\d+) valid unique clicks at (-?\d+)"
            r"( \(paid-click cap (\d+)(?:, (\d+) paid on earlier days)?\))?$"
        ),
        lambda m, c: (
            f"{m[2]} of {m[3]} valid unique clicks on {m[1]} at {money(int(m[4]), c)} each"
            + (f" (at most {m[6]} clicks paid in the period" if m[5] else "")
            + (f", {m[7]} on earlier days)" if m[7] else ")" if m[5] else "")
        ),
    ),
    (
        re.compile(
            r"^clicks of (\d{4}-\d\d-\d\d): (\d+) valid unique clicks paid at (-?\d+)"
            r" \(paid-click cap (\d+) reached, (\d+) paid on earlier days\)$"
        ),
        lambda m, c: (
            f"{m[2]} valid unique click{'' if m[2] == '1' else 's'} paid on {m[1]}"
            f" at {money(int(m[3]), c)} each"
            f" (the period's cap of {m[4]} paid clicks reached, {m[5]} paid on earlier days)"
        ),
    ),
    (
        re.compile(r"^base fee (-?\d+) for the period$"),
        lambda m, c: f"base fee of {money(int(m[1]), c)} for the period",
    ),
)


_PART = re.compile(r"(\d+(?:\.\d+)?%|fixed -?\d+) of (-?\d+) \(")
_EXCLUDED = re.compile(r"excluded (\d+)")
_NON_COMMISSIONABLE = re.compile(r"(\d+) non-commissionable")


def _items_in_words(rule: str, currency: str) -> str:
    """A sale priced per item: each rate's share and what was left out, in money."""
    rule = _PART.sub(lambda m: f"{_rate(m[1], currency)} of {money(int(m[2]), currency)} (", rule)
    rule = _EXCLUDED.sub(lambda m: f"{money(int(m[1]), currency)} excluded", rule)
    return _NON_COMMISSIONABLE.sub(
        lambda m: f"{money(int(m[1]), currency)} not commissionable", rule
    )


_ENGAGEMENT_VALUE = re.compile(r"\u00d7 (\d+(?:\.\d+)?)( per 1,000)?")
_ENGAGEMENT_AMOUNT = re.compile(r"(= |\(was |capped at )(-?\d+)")


def _engagement_in_words(rule: str, currency: str) -> str:
    """An engagement line's rule: each value per interaction (minor units, fractions
    allowed) and the amounts in the currency's units."""
    exponent = CURRENCY_EXPONENTS.get(currency)
    if exponent is None:
        return rule
    scale = Decimal(10) ** exponent

    def value(m: re.Match[str]) -> str:
        per = Decimal(m[1]) / scale
        return f"\u00d7 {format(per.normalize(), 'f')} {currency}{m[2] or ''}"

    rule = _ENGAGEMENT_VALUE.sub(value, rule)
    return _ENGAGEMENT_AMOUNT.sub(lambda m: m[1] + money(int(m[2]), currency), rule)


def rule_in_words(rule: str, currency: str) -> str:
    """A rule as the journal wrote it, its amounts in the currency's units."""
    if rule.startswith("engagement"):
        return _engagement_in_words(rule, currency)
    review = re.search(r"; (?:held for|approved in|declined in) .*$", rule)
    if review:  # the review's words follow the rule (journal.review_lines): kept as they are
        words = _REFUND_NOTE.sub(lambda m: _refund_note(m, currency), review[0])
        # A re-rank after the decision writes its words after the review's: in money too
        # ("re-ranked (was 300)" read as 300 EUR).
        words = _RERANKED_IN.sub(lambda m: _reranked(m, currency), words)
        return rule_in_words(rule[: review.start()], currency) + words
    suffix = ""
    reranked = _RERANKED.search(rule)
    if reranked:
        rule = rule[: reranked.start()]
        suffix = _reranked(reranked, currency)
    if rule.startswith("moved: "):
        return "moved to another approval date: " + rule_in_words(rule[7:], currency) + suffix
    # A correction's own words (journal.period._why), read when a page of postings holds
    # the correction and not the accrual it corrects.
    if rule.startswith("reduced before approval: "):
        return "reduced before approval: " + rule_in_words(rule[25:], currency) + suffix
    clawed = re.fullmatch(
        r"clawback: refund of (\d+) after approval( \(pro rata per item\))?", rule
    )
    if clawed:
        return (
            f"clawback: refund of {money(int(clawed[1]), currency)} after approval"
            + (clawed[2] or "")
            + suffix
        )
    # A line whose refund came before approval (journal.rules notes it after the rule):
    # the rule matched none of the patterns and read in minor units.
    noted = re.search("; " + _REFUND_NOTE.pattern + "$", rule)
    if noted:
        rule = rule[: noted.start()]
        suffix = "; " + _refund_note(noted, currency) + suffix
    # A survey-attributed conversion under a reduced rate (journal.rules.surveyed): the
    # rule it would be priced by, then the part of it paid.
    surveyed = _SURVEYED.search(rule)
    if surveyed:
        rule = rule[: surveyed.start()]
        suffix = (
            f"; survey-attributed: {surveyed[1]} % of {money(int(surveyed[2]), currency)}" + suffix
        )
    for pattern, rewrite in _RULES:
        match = pattern.match(rule)
        if match:
            return rewrite(match, currency) + suffix
    return rule + suffix


_SURVEYED = re.compile(r"; survey-attributed: (\d+(?:\.\d+)?)% of (-?\d+)$")


_PER_ITEM = "(pro rata per item)"
_RERANKED_IN = re.compile(r", re-ranked \(was (-?\d+)\)")
_RERANKED = re.compile(_RERANKED_IN.pattern + "$")


def _reranked(m: re.Match[str], currency: str) -> str:
    return f", re-ranked among the period's sales (was {money(int(m[1]), currency)})"


_REFUND_NOTE = re.compile(r"refunded (\d+) of (\d+) before approval( \(pro rata per item\))?")


def _refund_note(m: re.Match[str], currency: str) -> str:
    return (
        f"refunded {money(int(m[1]), currency)} of {money(int(m[2]), currency)}"
        f" before approval{m[3] or ''}"
    )


def explain_posting(posting: Posting) -> str:
    """One posting's part of its line, in plain words."""
    c = posting.currency
    amount = money(abs(posting.amount_minor), c)
    component = posting.component
    if component == "accrual":
        base = rule_in_words(posting.rule, c)
        if posting.corrects:
            # Not led by its sign: a CSV cell starting with "-" is guarded with a quote.
            return f"correction of {_signed(posting.amount_minor, c)}: {base}"
        return base
    if component == "refund":
        verb = "reduced by" if posting.amount_minor <= 0 else "restored"
        return f"{verb} {amount} before approval (refund)"
    if component.startswith("clawback"):
        if posting.amount_minor > 0:
            # A correction: the line changed since (re-ranked, an earlier-dated refund, a
            # cent moved by rounding), so this takes back less than first posted.
            cause = "reattribution" if "reattributed" in posting.rule else "refund"
            return (
                f"{amount} given back: the {cause} on {day(posting.occurred_at)} takes back"
                " less than first posted"
            )
        if "reattributed" in posting.rule:
            return (
                f"taken back {amount} on {day(posting.occurred_at)}: reattributed (a later"
                " click, stream or survey answer won the order)"
            )
        by_item = " (pro rata per item)" if posting.rule.endswith(_PER_ITEM) else ""
        return f"taken back {amount}: refund on {day(posting.occurred_at)}, after approval{by_item}"
    if component.startswith("cap:"):
        scope = "the creator's cap" if component == "cap:creator" else "the campaign's budget"
        if posting.amount_minor < 0:
            return f"cut by {amount}: {scope} was used up by earlier lines"
        return f"{amount} given back: room freed in {scope}"
    return posting.rule


def _signed(amount_minor: int, currency: str) -> str:
    sign = "+" if amount_minor >= 0 else "-"
    return sign + money(abs(amount_minor), currency)


# Each cap a line's pay can be cut by, as its explanation names it: an agency's override
# is cut by the agency's override cap (its line read 20 % of 10.00 paying 1.46, no reason).
_CAPS = (
    ("cap:creator", "the creator's cap"),
    ("cap:campaign", "the campaign's budget"),
    (OVERRIDE_CAP, "the agency's override cap"),
)


def standing_accruals(
    accruals: Sequence[Posting], passed_over: tuple[str, ...] = ("moved", "review_decline")
) -> list[Posting]:
    """The accrual postings that give a line its own words and date: not a review's
    corrections (``passed_over``), and of the dates that still hold money. An agency's
    override follows a held line with postings of its own kinds: approved, its held
    accrual is taken back by an ``override_correction`` dated as held, posted after the
    accrual at the real date, and the line read "pending until a review decision" even
    once paid. A line taken to nothing at every date keeps the postings it had."""
    kept = [p for p in accruals if p.kind not in passed_over] or list(accruals)
    held: dict[int, int] = {}
    for p in accruals:
        held[p.approve_at] = held.get(p.approve_at, 0) + p.amount_minor
    return [p for p in kept if held[p.approve_at]] or kept


def declines(postings: Sequence[Posting]) -> list[Posting]:
    """The postings that took a line back in review: a creator line's ``review_decline``,
    an agency override's correction reversing it with its creator's line."""
    return [
        p for p in postings if p.kind == "review_decline" or p.rule.startswith(REVERSED_BY_DECLINE)
    ]


def explain_line(postings: Sequence[Posting], as_of: int) -> str:
    """What a line's postings amount to: what earned it, where from, then each change
    (refunds, clawbacks, caps) once, then the total and when it is approved."""
    if not postings:
        return ""
    first = postings[0]
    c = first.currency
    accruals = [p for p in postings if p.component == "accrual"]
    # The line's own words and date: its standing accrual's, not a review's corrections
    # (a held accrual taken back is "moved", dated as held: the line read "pending until a
    # review decision" after it was approved), as views._line_view takes them.
    standing = standing_accruals(accruals)
    declined = declines(postings)
    rule = (standing[-1] if standing else first).rule
    if declined and declined[-1].kind == "review_decline":
        # The held words ("pending until approved") no longer hold: the decline's do (an
        # override's reversal already says its creator's line was declined, and why).
        rule = re.sub(r"; (?:held for|approved in) .*$", "", rule) + "; " + declined[-1].rule
    refund = sum(p.amount_minor for p in postings if p.component == "refund")
    if refund < 0 and not _REFUND_NOTE.search(rule):
        # What of the order was refunded, whatever the arrival order: an accrual posted
        # with its refund already known (a rebuild: both in one batch) notes it in its own
        # rule, one posted before the refund arrived only in the reduction's, and the same
        # line read differently after a rebuild.
        notes = [
            n
            for p in postings
            if p.component == "refund"
            for n in [_REFUND_NOTE.search(p.rule)]
            if n
        ]
        if notes:  # before a re-rank's words, where a rule written with it has it
            reranked = _RERANKED.search(rule)
            at = reranked.start() if reranked else len(rule)
            rule = rule[:at] + "; " + notes[-1][0] + rule[at:]
    head = rule_in_words(rule, c)
    facts = [head]
    if first.order_id:
        facts.append(f"order {first.order_id}")
    # The version that priced it, as its rule: a cap cut or release carries the version
    # the period opened under, and as a line's last posting it named terms that never had
    # the rule's rate.
    facts.append(f"terms v{(standing[-1] if standing else postings[-1]).terms_version}")
    parts = [", ".join(facts)]
    if refund < 0:
        parts.append(f"reduced by {money(-refund, c)} before approval (refund)")
    # Each clawback once, as what it takes back in the end: a later correction of it
    # (the line lowered since) is netted in, not listed as more taken back.
    clawbacks: dict[str, list[Posting]] = {}
    for p in postings:
        if p.component.startswith("clawback"):
            clawbacks.setdefault(p.component, []).append(p)
    for parts_of in clawbacks.values():
        net = sum(p.amount_minor for p in parts_of)
        if net:
            parts.append(explain_posting(replace(parts_of[0], amount_minor=net)))
    for scope, who in _CAPS:
        cut = sum(p.amount_minor for p in postings if p.component == scope)
        if cut < 0:
            parts.append(f"cut by {money(-cut, c)} ({who})")
    total = sum(p.amount_minor for p in postings)
    own = [p for p in postings if not p.component.startswith("clawback")] or list(postings)
    approve_at = (standing[-1] if standing else own[-1]).approve_at
    when = (
        f"declined in review on {day(declined[-1].occurred_at)}"
        if declined
        else f"approved on {day(approve_at)}"
        if approve_at <= as_of
        else f"pending until {day(approve_at)}"
    )
    parts.append(f"pays {money(total, c)}, {when}")
    return "; ".join(parts)
