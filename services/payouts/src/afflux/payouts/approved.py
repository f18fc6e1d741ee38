"""What a creator's postings approved at a time add up to, per campaign, over given
campaign-periods: what a payout run pays from, and what compaction counts as payable
from periods later than the one it judges."""

from __future__ import annotations

from collections import defaultdict

from afflux.payouts import reads, snapshots
from afflux.payouts.period_figures import period_figures
from afflux.payouts.store import LedgerStore

Owner = tuple[str, str]  # affiliate, campaign


async def approved_by_creator(
    store: LedgerStore, cps: list[reads.CampaignPeriod], as_of: int
) -> tuple[dict[Owner, int], dict[Owner, list[reads.CampaignPeriod]]]:
    """Per creator and campaign: what their postings approved at ``as_of`` add up to,
    and the campaign-periods that hold them."""
    # Who has a sum in each period; then each period's figures read at one instant (a
    # step landing between a total and its pending part read apart paid pending money).
    totals = await reads.period_creator_sums(store, cps)
    wanted = [(cid, p, a) for (cid, p), sums in zip(cps, totals, strict=True) for a in sorted(sums)]
    approved: dict[Owner, int] = defaultdict(int)
    periods: dict[Owner, list[reads.CampaignPeriod]] = defaultdict(list)
    for (cid, p, a), amount in zip(wanted, await approved_parts(store, wanted, as_of), strict=True):
        approved[(a, cid)] += amount
        periods[(a, cid)].append((cid, p))
    return dict(approved), dict(periods)


async def approved_parts(
    store: LedgerStore, wanted: list[tuple[str, str, str]], as_of: int
) -> list[int]:
    """Per (campaign, period, creator) of ``wanted``: its postings approved at ``as_of``."""
    if not wanted:
        return []
    figures = await period_figures(store, wanted, as_of)
    # A compacted period keeps no approval schedule: its pending part from the snapshot,
    # judged by the marker read with the figures (one read apart saw a pass land between
    # them and took the pending part off twice).
    closed = await snapshots.pending_amounts(
        store, wanted, [f.compacted_approved_by for f in figures], as_of
    )
    return [f.total - f.pending - also for f, also in zip(figures, closed, strict=True)]
