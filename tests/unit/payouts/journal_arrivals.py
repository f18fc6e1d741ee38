"""One campaign-period's journal fed item by item in every arrival order, with reloads
from its stored records here and there, against the batch reference: the permutation
harness of the review-hold tests."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.journal.records import Posting, record_from_json, record_to_json
from afflux.shared.core.journal.review_lines import ReviewFact
from afflux.shared.core.terms import TermsVersion

Item = ConversionFact | RefundFact | ReviewFact
Versions = tuple[TermsVersion, ...]
Amounts = dict[tuple[str, int], int]


def run(items: list[Item], vs: Versions, reload: list[bool]) -> list[Posting]:
    """The postings of the period fed ``items`` one batch each; after an item whose
    ``reload`` is set, the state is rebuilt from its stored records, as after a restart."""
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", vs)
    postings: list[Posting] = []
    for item, again in zip(items, reload, strict=True):
        if isinstance(item, ConversionFact):
            batch = StepInput(conversions=(item,))
        elif isinstance(item, RefundFact):
            batch = StepInput(refunds=(item,))
        else:
            batch = StepInput(reviews=(item,))
        postings += state.step(batch).postings
        if again:
            state = PeriodState.load(
                CAMPAIGN,
                PERIOD,
                "EUR",
                vs,
                [record_from_json(record_to_json(r)) for r in state.lines.values()],
                [],
                state.confirmations,
                state.seq,
            )
    return postings


def first_decisions(items: list[Item]) -> dict[str, tuple[str, int]]:
    """Each conversion's first decision (the one that stands) and its time."""
    first: dict[str, tuple[str, int]] = {}
    for i in items:
        if isinstance(i, ReviewFact):
            first.setdefault(i.conversion_id, (i.decision, i.occurred_at))
    return first


def reference(items: list[Item], vs: Versions) -> Amounts:
    conversions = [i for i in items if isinstance(i, ConversionFact)]
    refunds = [i for i in items if isinstance(i, RefundFact)]
    lines = reference_lines(
        CAMPAIGN, PERIOD, conversions, refunds, {}, (), vs, reviews=first_decisions(items)
    )
    return target_amounts(lines)


def arrivals(
    items: list[Item], *, keep_decision_order: bool
) -> Iterator[tuple[list[Item], list[bool]]]:
    """Every order of ``items`` (only those keeping the decisions in their given order,
    when asked) and which items a reload follows, drawn from a seed fixed by the items."""
    decisions = [i for i in items if isinstance(i, ReviewFact)]
    rng = random.Random(len(items))
    for order in itertools.permutations(items):
        if keep_decision_order and [i for i in order if isinstance(i, ReviewFact)] != decisions:
            continue
        yield list(order), [rng.random() < 0.3 for _ in order]


def every_arrival(
    items: list[Item],
    vs: Versions,
    *,
    keep_decision_order: bool = False,
    feed: Callable[[list[Item], Versions, list[bool]], list[Posting]] = run,
    expected: Callable[[list[Item], Versions], Amounts] = reference,
) -> Amounts:
    """The journal ``feed`` nets to the ``expected`` amounts in every arrival order;
    what it nets to."""
    want = expected(items, vs)
    for order, reload in arrivals(items, keep_decision_order=keep_decision_order):
        assert posted_amounts(feed(order, vs, reload)) == want, [
            getattr(i, "conversion_id", "") + getattr(i, "decision", "") for i in order
        ]
    return want
