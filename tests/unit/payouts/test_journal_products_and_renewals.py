"""Per-product rates and recurring commissions, journal against the batch reference: sales
with items (sku and category rates, exclusions, non-commissionable parts, tiers and the
new-customer rate as the default), renewals, and refunds naming items by quantity or
amount (an unknown sku among them), fed in random orders and batch sizes with reloads,
always net to ``afflux.oracle.commission`` line by line and per approval date."""

from __future__ import annotations

import random

import pytest

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, START, Facts, arrival
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.period import PeriodState
from afflux.shared.core.journal.records import Posting, record_from_json, record_to_json
from afflux.shared.core.products import ItemRow, RefundItemRow, refund_items_problem
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit
SEEDS = range(30)
SKUS = {
    "shoe-1": "shoes",  # its own sku rate
    "shoe-2": "shoes",  # the shoes category rate
    "bag-1": "bags",  # the sale's rate (base, tier or new customer)
    "card-1": "gift_card",  # an excluded category
    "sock-9": "socks",  # an excluded sku
    "hat-1": None,  # no category: the sale's rate
}


def _terms(default: dict[str, object], renewal_percent: str) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 5,
            "plan": {
                "sale": {
                    "rate": default,
                    "new_customer": {"percent": "15"},
                    "products": {
                        "skus": {"shoe-1": "12.5"},
                        "categories": {"shoes": "6"},
                        "excluded_skus": ["sock-9"],
                        "excluded_categories": ["gift_card"],
                    },
                },
                "tiers": [{"from_sales": 3, "rate": {"percent": "10"}}],
                "milestones": [{"at_sales": 4, "bonus_minor": 700}],
                "recurring": {"rate": {"percent": renewal_percent}, "max_renewals": 12},
                "creator_cap_minor": 9000,
            },
        }
    )


def versions() -> tuple[TermsVersion, ...]:
    """From mid-period on, a fixed sale rate (paid once per sale with default-rate items)."""
    return (
        TermsVersion(
            version=1, effective_from=0, published_at=0, terms=_terms({"percent": "8"}, "20")
        ),
        TermsVersion(
            version=2,
            effective_from=START + 15 * MS_PER_DAY,
            published_at=0,
            terms=_terms({"fixed_minor": 250}, "7.5"),
        ),
    )


def random_items(rng: random.Random) -> tuple[ItemRow, ...]:
    skus = rng.sample(sorted(SKUS), rng.randint(1, 4))
    rows = [(s, SKUS[s], rng.randint(1, 3), rng.randint(1, 9_000)) for s in skus]
    if rng.random() < 0.3:
        # A sku on a second row at another price, sometimes under another category: the
        # orders API refuses the latter, but an order an earlier version took, or one
        # written straight to the topic, is priced all the same.
        sku, category, _, _ = rng.choice(rows)
        other = rng.choice([category, category, "gift_card", None, "shoes"])
        rows.append((sku, other, rng.randint(1, 3), rng.randint(1, 9_000)))
    return tuple(rows)


def random_refund_items(
    rng: random.Random, items: tuple[ItemRow, ...]
) -> tuple[RefundItemRow, ...]:
    named: list[RefundItemRow] = []
    for sku, _, quantity, unit in rng.sample(items, rng.randint(1, len(items))):
        if rng.random() < 0.5:
            named.append((sku, rng.randint(1, quantity), None))
        else:
            named.append((sku, None, rng.randint(1, quantity * unit)))
    if rng.random() < 0.1:
        named.append(("not-on-the-order", 1, None))  # falls back to pro rata of the order
    return tuple(named)


def named_value(items: tuple[ItemRow, ...], named: tuple[RefundItemRow, ...]) -> int:
    """What the items named stand for: a quantity as its share of the sku's rows (a sku
    may be on two rows at two prices), rounded down as the API's rule takes it."""
    whole: dict[str, int] = {}
    count: dict[str, int] = {}
    for sku, _, quantity, unit in items:
        whole[sku] = whole.get(sku, 0) + quantity * unit
        count[sku] = count.get(sku, 0) + quantity
    return sum(
        min(whole[sku], whole[sku] * units // count[sku]) if units is not None else amount or 0
        for sku, units, amount in named
    )


def random_refund(
    rng: random.Random, items: tuple[ItemRow, ...], extra: int, left: int
) -> tuple[int, tuple[RefundItemRow, ...]]:
    """A refund of at most ``left`` (amount, items named). Naming items, it is as often
    one whose amount the items make up (the API's rule: at most ``extra``, the order's
    non-item part, beside them) as a random one, and it is drawn at the rule's edges:
    the items alone, the items and all of ``extra``, one minor unit more than that, or
    one less than the items (a 1-cent refund naming a whole item is the far end)."""
    if not items or rng.random() < 0.3:
        return rng.randint(1, left), ()
    named = random_refund_items(rng, items)
    value = named_value(items, named) if named[-1][0] != "not-on-the-order" else 0
    edge = rng.choice(["items", "items+extra", "one over", "one under", "a cent", "random"])
    amount = {
        "items": value,
        "items+extra": value + extra,
        "one over": value + extra + 1,
        "one under": value - 1,
        "a cent": 1,
    }.get(edge, rng.randint(1, left))
    if not 1 <= amount <= left:
        amount = rng.randint(1, left)
    return amount, named


def random_facts(rng: random.Random) -> Facts:
    facts = Facts()
    for i in range(rng.randint(8, 30)):
        creator = f"creator-{rng.randint(1, 2)}"
        at = START + rng.randint(0, 30 * MS_PER_DAY)
        version = 1 if at < START + 15 * MS_PER_DAY else 2
        items: tuple[ItemRow, ...] = ()
        renewal = rng.random() < 0.3
        if renewal:
            kind, amount, extra = "renewal", rng.randint(1, 5_000), 0
        else:
            kind = "sale"
            items = random_items(rng) if rng.random() < 0.8 else ()
            extra = rng.choice([0, 0, rng.randint(1, 900)])
            amount = sum(q * u for _, _, q, u in items) + extra if items else rng.randint(1, 20_000)
            extra = min(extra, amount)
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
                items,
                extra,
                rng.randint(1, 12) if renewal else None,
            )
        )
        refunded = 0
        for j in range(rng.choice([0, 1, 1, 2, 3])):
            if refunded >= amount:
                break
            part, named = random_refund(rng, items, extra, amount - refunded)
            refunded += part
            facts.refunds.append(
                RefundFact(
                    f"rev-{i}-{j}",
                    f"ev-rev-{i}-{j}",
                    f"order-{i}",
                    part,
                    at + rng.randint(0, 12 * MS_PER_DAY),
                    f"conv-{i}",
                    "reattributed" if rng.random() < 0.05 else "refund",
                    named,
                )
            )
    return facts


def journal(facts: Facts, rng: random.Random) -> list[Posting]:
    state = PeriodState(CAMPAIGN, PERIOD, "EUR", versions())
    postings: list[Posting] = []
    for batch in arrival(facts, rng):
        postings += state.step(batch).postings
        if rng.random() < 0.25:  # as after a restart: the state from its stored records
            state = PeriodState.load(
                CAMPAIGN,
                PERIOD,
                "EUR",
                versions(),
                [record_from_json(record_to_json(r)) for r in state.lines.values()],
                [],
                state.confirmations,
                state.seq,
            )
    return postings


def reference(facts: Facts) -> dict[tuple[str, int], int]:
    lines = reference_lines(CAMPAIGN, PERIOD, facts.conversions, facts.refunds, {}, [], versions())
    return target_amounts(lines)


@pytest.mark.parametrize("seed", SEEDS)
def test_items_renewals_and_item_refunds_net_to_the_reference_in_any_order(seed: int) -> None:
    facts = random_facts(random.Random(seed))
    want = reference(facts)
    for order in range(2):
        got = posted_amounts(journal(facts, random.Random(seed * 1000 + order)))
        assert got == want, f"arrival {order}"


def test_the_workload_reaches_item_refunds_renewal_clawbacks_and_re_ranks() -> None:
    """The seeds above would prove little if these never happened."""
    kinds: set[tuple[str, str]] = set()
    for seed in SEEDS:
        for p in journal(random_facts(random.Random(seed)), random.Random(seed)):
            kinds.add((p.line_kind, p.kind))
            if "pro rata per item" in p.rule:
                # A clawback says it too, as a reduction before approval does (its rule
                # read only "refund of N after approval" for a refund priced per item).
                kinds.add(("sale", "item clawback" if p.kind == "clawback" else "item refund"))
    assert {
        ("sale", "tier_adjustment"),
        ("sale", "refund_reduction"),
        ("sale", "clawback"),
        ("sale", "item refund"),
        ("sale", "item clawback"),
        ("renewal", "accrual"),
        ("renewal", "clawback"),
        ("renewal", "refund_reduction"),
        ("sale", "cap_cut"),
    } <= kinds


def test_the_item_refunds_drawn_reach_both_sides_of_the_apis_rule() -> None:
    """Refunds produced onto the topic around the orders API: the seeds draw item refunds
    the API accepts (at its limit too: the items and all of the order's non-item part) and
    ones it refuses (one minor unit over that, or items worth more than the refund), so the
    journal and the reference are held to the same answer for both."""
    seen: set[str] = set()
    for seed in SEEDS:
        facts = random_facts(random.Random(seed))
        sales = {c.conversion_id: c for c in facts.conversions}
        for r in facts.refunds:
            c = sales[r.conversion_id]
            if not r.items or not all(sku in {i[0] for i in c.items} for sku, _, _ in r.items):
                continue
            value = named_value(c.items, r.items)
            rest = c.non_commissionable_minor
            if refund_items_problem(r.amount_minor, c.items, rest, r.items):
                seen.add("over the items" if r.amount_minor > value else "under the items")
                if rest and r.amount_minor == value + rest + 1:
                    seen.add("one over the limit")
            else:
                seen.add("accepted")
                if rest and r.amount_minor == value + rest:
                    seen.add("at the limit")
    assert seen == {
        "accepted",
        "at the limit",
        "one over the limit",
        "over the items",
        "under the items",
    }
