"""Random campaign-periods for the ledger's arrival-order tests: facts of every kind
(sales, leads needing confirmation, refunds before and after approval, reattributions,
clicks) for a plan that uses every element, so tiers re-rank, milestones come and go
and both caps bind."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ClickTally, ConversionFact, RefundFact
from afflux.shared.core.journal.click_days import day_start
from afflux.shared.core.journal.period import ClickFigures, PeriodState, StepInput
from afflux.shared.core.journal.records import Posting, record_from_json, record_to_json
from afflux.shared.core.terms import CampaignTerms, TermsVersion

CAMPAIGN, PERIOD = "camp", "2026-03"
# Every kind of posting the journal makes: a workload that claims to exercise the
# corrections shows each of them.
EVERY_CORRECTION = frozenset(
    {
        "accrual",
        "tier_adjustment",
        "refund_reduction",
        "clawback",
        "cap_cut",
        "cap_release",
        "bonus",
        "bonus_reversal",
        "base_fee",
        "click_pay",
        "moved",
    }
)
START = 1_772_323_200_000  # 2026-03-01T00:00:00Z


def _terms(sale_percent: str, lead_minor: int) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 5,
            "lead_confirmation_required": True,
            "plan": {
                "sale": {"rate": {"percent": sale_percent}, "new_customer": {"percent": "12"}},
                "tiers": [
                    {"from_sales": 3, "rate": {"percent": "10"}},
                    {"from_sales": 6, "rate": {"percent": "12.5"}},
                ],
                "milestones": [
                    {"at_sales": 4, "bonus_minor": 1000},
                    {"at_sales": 8, "bonus_minor": 3000},
                ],
                "lead_minor": lead_minor,
                "actions_minor": {"install": 150},
                "base_fee_minor": 500,
                "click": {"per_click_minor": 7, "paid_click_cap": 5},
                "creator_cap_minor": 4000,
                "campaign_budget_minor": 9000,
            },
        }
    )


def plan_versions() -> tuple[TermsVersion, ...]:
    """Every plan element; from mid-period on sales pay 9 % and leads 350 (a conversion
    names the version it was decided under; caps and period lines keep the first)."""
    return (
        TermsVersion(version=1, effective_from=0, published_at=0, terms=_terms("8", 300)),
        TermsVersion(
            version=2,
            effective_from=START + 15 * MS_PER_DAY,
            published_at=0,
            terms=_terms("9", 350),
        ),
    )


@dataclass
class Facts:
    conversions: list[ConversionFact] = field(default_factory=list)
    refunds: list[RefundFact] = field(default_factory=list)
    confirmations: list[tuple[str, str]] = field(default_factory=list)
    clicks: list[tuple[str, str, int]] = field(default_factory=list)  # click id, creator, time

    def tallies(self) -> list[ClickTally]:
        times: dict[str, list[int]] = defaultdict(list)
        for _, creator, at in self.clicks:
            times[creator].append(at)
        return [
            ClickTally(
                c, len(ts), min(ts), tuple(sorted(Counter(day_start(t) for t in ts).items()))
            )
            for c, ts in sorted(times.items())
        ]


def random_facts(rng: random.Random) -> Facts:
    facts = Facts()
    for i in range(rng.randint(10, 45)):
        creator = f"creator-{rng.randint(1, 3)}"
        kind = rng.choice(["sale", "sale", "sale", "lead", "install"])
        at = START + rng.randint(0, 30 * MS_PER_DAY)
        if facts.conversions and rng.random() < 0.25:
            # Orders of one millisecond (a backfill, second-resolution timestamps): the
            # rules rank them by conversion id.
            at = rng.choice(facts.conversions).occurred_at
        amount = rng.randint(1, 20_000) if kind == "sale" else 0
        version = 1 if at < START + 15 * MS_PER_DAY else 2
        facts.conversions.append(
            ConversionFact(
                f"conv-{i}",
                f"ev-{i}",
                f"order-{i}",
                creator,
                kind,
                None,
                amount,
                "EUR",
                rng.random() < 0.2,
                at,
                version,
            )
        )
        if kind == "lead" and rng.random() < 0.7:
            facts.confirmations.append((f"order-{i}", f"confirm-{i}"))
        for j in range(rng.choice([0, 0, 1, 2])):
            refund_at = at + rng.randint(0, 12 * MS_PER_DAY)
            reason = "reattributed" if rng.random() < 0.1 else "refund"
            part = rng.randint(1, amount) if amount else 0
            facts.refunds.append(
                RefundFact(
                    f"rev-{i}-{j}",
                    f"ev-rev-{i}-{j}",
                    f"order-{i}",
                    part,
                    refund_at,
                    f"conv-{i}",
                    reason,
                )
            )
    for k in range(rng.randint(0, 25)):
        at = START + rng.randint(0, 30 * MS_PER_DAY)
        facts.clicks.append((f"click-{k}", f"creator-{rng.randint(1, 3)}", at))
    return facts


def arrival(facts: Facts, rng: random.Random) -> list[StepInput]:
    """The facts in a random order, cut into batches of random sizes, each click batch
    carrying the creator's click figures so far (as the store's tallies do)."""
    items: list[ConversionFact | RefundFact | Confirmation | Click] = [
        *facts.conversions,
        *facts.refunds,
        *(Confirmation(*x) for x in facts.confirmations),
        *(Click(*k) for k in facts.clicks),
    ]
    rng.shuffle(items)
    seen: dict[str, list[int]] = defaultdict(list)
    batches: list[StepInput] = []
    at = 0
    while at < len(items):
        size = rng.randint(1, 8)
        chunk, at = items[at : at + size], at + size
        clicked: set[str] = set()
        for item in chunk:
            if isinstance(item, Click):
                seen[item.creator].append(item.at)
                clicked.add(item.creator)
        batches.append(
            StepInput(
                conversions=tuple(i for i in chunk if isinstance(i, ConversionFact)),
                refunds=tuple(i for i in chunk if isinstance(i, RefundFact)),
                confirmations=tuple(
                    (i.order_id, i.event_id) for i in chunk if isinstance(i, Confirmation)
                ),
                clicks=tuple(
                    ClickFigures(
                        c,
                        len(seen[c]),
                        min(seen[c]),
                        max(seen[c]),
                        _per_day(seen[c]),
                    )
                    for c in sorted(clicked)
                ),
            )
        )
    return batches


@dataclass(frozen=True)
class Confirmation:
    order_id: str
    event_id: str


@dataclass(frozen=True)
class Click:
    click_id: str
    creator: str
    at: int


def journal_of(
    facts: Facts, versions: tuple[TermsVersion, ...], rng: random.Random, reload_chance: float
) -> list[Posting]:
    """The postings of the period fed ``facts`` in a random arrival (``arrival``); after a
    batch, with ``reload_chance``, the state is rebuilt from its stored records and click
    figures, as after a restart."""
    return postings_of(arrival(facts, rng), versions, rng, reload_chance)


def postings_of(
    batches: Iterable[StepInput],
    versions: tuple[TermsVersion, ...],
    rng: random.Random,
    reload_chance: float,
) -> list[Posting]:
    """The postings of the period fed ``batches`` in order; after a batch, with
    ``reload_chance``, the state is rebuilt from its stored records and click figures."""
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions)
    postings: list[Posting] = []
    for batch in batches:
        postings += state.step(batch).postings
        if rng.random() < reload_chance:
            state = PeriodState.load(
                CAMPAIGN,
                PERIOD,
                "EUR",
                versions,
                [record_from_json(record_to_json(r)) for r in state.lines.values()],
                [c.clicks for c in state.creators.values() if c.clicks is not None],
                state.confirmations,
                state.seq,
            )
    return postings


def _per_day(times: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """(day start, clicks that day) of click times, in day order."""
    return tuple(sorted(Counter(day_start(t) for t in times).items()))
