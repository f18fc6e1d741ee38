"""The what-if ``afflux demo`` shows after its table: the demo's recorded events replayed
with a campaign's tier rates doubled, beside what its current terms pay
(docs/campaigns.md, "What-if")."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

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
            update={
                "rate": tier.rate.model_copy(update={"percent": min(100, 2 * tier.rate.percent)})
            }
        )
        if tier.rate.percent is not None
        else tier
        for tier in terms.plan.tiers
    )
    return terms.model_copy(update={"plan": terms.plan.model_copy(update={"tiers": tiers})})


def tiered(campaigns: Sequence[CampaignTerms]) -> CampaignTerms | None:
    """The first campaign whose plan has volume tiers."""
    return next((t for t in campaigns if t.plan.tiers), None)


def show_whatif(console: Console, bootstrap: str, campaigns: Sequence[CampaignTerms]) -> None:
    chosen = tiered(campaigns)
    if chosen is None:
        return
    rates = ", ".join(f"from net sale {t.from_sales}: {t.rate.percent}%" for t in chosen.plan.tiers)
    console.print()
    console.print(
        f"What if {chosen.campaign_id} doubled its tier rates ({rates})? "
        f"afflux campaigns whatif replays the recorded events under the draft:"
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
