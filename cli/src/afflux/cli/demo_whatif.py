"""The what-if ``afflux demo`` shows after its table: the demo's recorded events replayed
with a campaign's tier rates doubled, beside what its current terms pay
(docs/campaigns.md, "What-if")."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from rich.console import Console

from afflux.cli.whatif_cmd import print_diff
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.core.whatif.diff import WhatIfDiff
from afflux.shared.core.whatif.log import EVER
from afflux.shared.io.whatif_source import ReplayBounds, ReplayRefused, read_terms, run_whatif

SHOWN_CHANGES = 8


def doubled_tiers(terms: CampaignTerms) -> CampaignTerms:
    """``terms`` with every percent tier rate doubled (at most 100 %)."""
    tiers = tuple(
        tier.model_copy(
            update={"rate": tier.rate.model_copy(update={"percent": _doubled(tier.rate.percent)})}
        )
        if tier.rate.percent is not None
        else tier
        for tier in terms.plan.tiers
    )
    return terms.model_copy(update={"plan": terms.plan.model_copy(update={"tiers": tiers})})


def _doubled(percent: Decimal) -> Decimal:
    # Written as a person would (25, not 25.0), as lines explain their rates.
    return Decimal(format(min(Decimal(100), 2 * percent).normalize(), "f"))


def question(terms: CampaignTerms) -> str:
    """The draft the demo tries, each percent tier's rate now and in the draft."""
    draft = doubled_tiers(terms)
    rates = ", ".join(
        f"from net sale {now.from_sales}: {now.rate.percent}% -> {new.rate.percent}%"
        for now, new in zip(terms.plan.tiers, draft.plan.tiers, strict=True)
        if now.rate.percent is not None and new.rate.percent is not None
    )
    return f"What if {terms.campaign_id} doubled its tier rates ({rates})?"


def tiered(campaigns: Sequence[CampaignTerms]) -> CampaignTerms | None:
    """The first campaign whose plan has volume tiers."""
    return next((t for t in campaigns if t.plan.tiers), None)


def show_whatif(console: Console, bootstrap: str, campaigns: Sequence[CampaignTerms]) -> None:
    chosen = tiered(campaigns)
    if chosen is None:
        return
    console.print()
    console.print(
        f"{question(chosen)} afflux campaigns whatif replays the recorded events under the draft:"
    )
    try:
        diff = asyncio.run(_diff(bootstrap, chosen))
    except (ReplayRefused, OSError, LookupError) as exc:
        console.print(f"  what-if not available: {exc}")
        return
    print_diff(console, diff, shown=SHOWN_CHANGES)
    if diff.empty:
        console.print(
            f"  (no creator reached net sale {chosen.plan.tiers[0].from_sales} in a period "
            "of this short run: run the demo with more --visitors to see one)"
        )


async def _diff(bootstrap: str, chosen: CampaignTerms) -> WhatIfDiff:
    directory = await read_terms(bootstrap)
    versions = directory.versions(chosen.campaign_id)
    draft = doubled_tiers(directory.latest(chosen.campaign_id).terms)
    diff, _ = await run_whatif(bootstrap, versions, draft, EVER, ReplayBounds())
    return diff
