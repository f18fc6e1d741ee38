"""Same money, any plan: the journal of a campaign-period whose terms are drawn at random
(every plan element present or not, rates percent or fixed, tiers and milestones at random
thresholds, caps and budgets from zero to loose, one to three versions with random
effective times and lock days), fed random facts (refunds that may sum past their order,
leads with and without confirmation) in random orders and batch sizes with reloads, nets
to the batch reference line by line and per approval date, to the cent."""

from __future__ import annotations

import random
from typing import Any

import pytest

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import (
    CAMPAIGN,
    EVERY_CORRECTION,
    PERIOD,
    START,
    Facts,
    journal_of,
)
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit
SEEDS = range(120)
ARRIVALS_PER_SEED = 2
Versions = tuple[TermsVersion, ...]


def random_rate(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.7:
        return {"percent": rng.choice(["0", "1", "2.5", "5", "8", "12.5", "33.33", "50", "100"])}
    return {"fixed_minor": rng.choice([0, 1, 99, 250, 1000])}


def random_plan(rng: random.Random) -> dict[str, Any]:
    plan: dict[str, Any] = {"sale": {"rate": random_rate(rng)}}
    if rng.random() < 0.4:
        plan["sale"]["new_customer"] = random_rate(rng)
    if rng.random() < 0.6:
        starts = sorted(rng.sample(range(1, 12), rng.randint(1, 3)))
        plan["tiers"] = [{"from_sales": s, "rate": random_rate(rng)} for s in starts]
    if rng.random() < 0.6:
        starts = sorted(rng.sample(range(1, 12), rng.randint(1, 3)))
        plan["milestones"] = [
            {"at_sales": s, "bonus_minor": rng.choice([0, 1, 500, 3000])} for s in starts
        ]
    optional: dict[str, Any] = {
        "lead_minor": rng.choice([0, 1, 300, 5000]),
        "actions_minor": {"install": rng.choice([0, 150, 999])},
        "base_fee_minor": rng.choice([0, 1, 500, 20_000]),
        "creator_cap_minor": rng.choice([0, 1, 700, 4000, 20_000]),
        "campaign_budget_minor": rng.choice([0, 1, 900, 9000, 40_000]),
    }
    plan.update({name: value for name, value in optional.items() if rng.random() < 0.5})
    if rng.random() < 0.5:
        click: dict[str, Any] = {"per_click_minor": rng.choice([0, 1, 7, 50])}
        if rng.random() < 0.6:
            click["paid_click_cap"] = rng.choice([0, 1, 5, 100])
        plan["click"] = click
    return plan


def random_versions(rng: random.Random) -> Versions:
    lock_days = rng.choice([0, 1, 5, 30])
    confirmation = rng.random() < 0.5
    later = sorted(START + rng.randint(1, 29 * MS_PER_DAY) for _ in range(rng.randint(0, 2)))
    starts = [0, *later]
    return tuple(
        TermsVersion(
            version=number,
            effective_from=start,
            published_at=0,
            terms=CampaignTerms.model_validate(
                {
                    "campaign_id": CAMPAIGN,
                    "merchant_id": "m",
                    "currency": "EUR",
                    "lock_days": rng.choice([lock_days, lock_days, 0, 10]),
                    "lead_confirmation_required": confirmation,
                    "plan": random_plan(rng),
                }
            ),
        )
        for number, start in enumerate(starts, start=1)
    )


def random_facts(rng: random.Random, versions: Versions) -> Facts:
    facts = Facts()
    creators = rng.randint(1, 4)
    for i in range(rng.randint(5, 40)):
        kind = rng.choice(["sale", "sale", "sale", "lead", "install"])
        at = START + rng.randint(0, 30 * MS_PER_DAY)
        amount = (
            rng.choice([rng.randint(1, 20_000), rng.randint(1, 20_000), 1]) if kind == "sale" else 0
        )
        version = max(v.version for v in versions if v.effective_from <= at)
        facts.conversions.append(
            ConversionFact(
                f"conv-{i}",
                f"ev-{i}",
                f"order-{i}",
                f"creator-{rng.randint(1, creators)}",
                kind,
                None,
                amount,
                "EUR",
                rng.random() < 0.3,
                at,
                version,
            )
        )
        if kind == "lead" and rng.random() < 0.7:
            facts.confirmations.append((f"order-{i}", f"confirm-{i}"))
        for j in range(rng.choice([0, 0, 1, 2, 3])):  # their parts may sum past the order
            facts.refunds.append(
                RefundFact(
                    f"rev-{i}-{j}",
                    f"ev-rev-{i}-{j}",
                    f"order-{i}",
                    rng.randint(1, amount) if amount else 0,
                    at + rng.randint(0, 40 * MS_PER_DAY),
                    f"conv-{i}",
                    "reattributed" if rng.random() < 0.1 else "refund",
                )
            )
    for k in range(rng.randint(0, 30)):
        at = START + rng.randint(0, 30 * MS_PER_DAY)
        facts.clicks.append((f"click-{k}", f"creator-{rng.randint(1, creators)}", at))
    return facts


def journal(facts: Facts, versions: Versions, rng: random.Random) -> list[Posting]:
    return journal_of(facts, versions, rng, reload_chance=0.25)


def reference(facts: Facts, versions: Versions) -> dict[tuple[str, int], int]:
    lines = reference_lines(
        CAMPAIGN,
        PERIOD,
        facts.conversions,
        facts.refunds,
        dict(facts.confirmations),
        facts.tallies(),
        versions,
    )
    return target_amounts(lines)


@pytest.mark.parametrize("seed", SEEDS)
def test_journal_of_a_random_plan_nets_to_the_reference_whatever_the_arrival_order(
    seed: int,
) -> None:
    rng = random.Random(seed)
    versions = random_versions(rng)
    facts = random_facts(rng, versions)
    want = reference(facts, versions)
    for arrival_seed in range(ARRIVALS_PER_SEED):
        got = posted_amounts(journal(facts, versions, random.Random(seed * 1000 + arrival_seed)))
        assert got == want, f"arrival {arrival_seed}"


def test_the_random_plans_exercise_every_correction() -> None:
    """The seeds above would prove little if their plans never made corrections."""
    kinds: set[str] = set()
    for seed in SEEDS:
        rng = random.Random(seed)
        versions = random_versions(rng)
        facts = random_facts(rng, versions)
        kinds |= {p.kind for p in journal(facts, versions, random.Random(seed))}
    assert kinds >= EVERY_CORRECTION
