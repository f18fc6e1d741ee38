"""Same money, any arrival order (DESIGN §4): the journal of a campaign-period, fed
the same facts in random orders and batch sizes (and reloaded from its stored records
now and then, as after a restart), always nets to the batch reference, line by line
and per approval date, to the cent. Only the history of corrections differs."""

from __future__ import annotations

import random

import pytest

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import (
    CAMPAIGN,
    EVERY_CORRECTION,
    PERIOD,
    Facts,
    journal_of,
    plan_versions,
    random_facts,
)
from afflux.shared.core.journal.records import Posting

pytestmark = pytest.mark.unit
SEEDS = range(40)
ORDERS_PER_SEED = 3


def journal(facts: Facts, rng: random.Random, reload_chance: float) -> list[Posting]:
    return journal_of(facts, plan_versions(), rng, reload_chance)


def reference(facts: Facts) -> dict[tuple[str, int], int]:
    lines = reference_lines(
        CAMPAIGN,
        PERIOD,
        facts.conversions,
        facts.refunds,
        dict(facts.confirmations),
        facts.tallies(),
        plan_versions(),
    )
    return target_amounts(lines)


@pytest.mark.parametrize("seed", SEEDS)
def test_journal_nets_to_the_reference_whatever_the_arrival_order(seed: int) -> None:
    facts = random_facts(random.Random(seed))
    want = reference(facts)
    for order in range(ORDERS_PER_SEED):
        rng = random.Random(seed * 1000 + order)
        assert posted_amounts(journal(facts, rng, reload_chance=0.25)) == want, f"arrival {order}"


def test_the_workload_exercises_every_correction() -> None:
    """The seeds above would prove little if corrections never happened."""
    kinds: set[str] = set()
    for seed in SEEDS:
        facts = random_facts(random.Random(seed))
        kinds |= {p.kind for p in journal(facts, random.Random(seed), reload_chance=0.0)}
    assert kinds >= EVERY_CORRECTION


def test_a_posting_is_never_changed_and_each_correction_names_what_it_corrects() -> None:
    facts = random_facts(random.Random(7))
    postings = journal(facts, random.Random(8), reload_chance=0.3)
    assert len({p.posting_id for p in postings}) == len(postings)
    assert [p.seq for p in postings] == list(range(1, len(postings) + 1))
    ids = {p.posting_id for p in postings}
    last_of: dict[tuple[str, str, int], str] = {}
    for p in postings:
        component = (p.line_id, p.component, p.approve_at)
        assert p.corrects == last_of.get(component), p
        assert p.corrects is None or p.corrects in ids
        last_of[component] = p.posting_id
