"""An order's postings: ``GET /v1/campaigns/{campaign_id}/orders/{order_id}/postings``
(admin; the orders service asks it for ``GET /v1/orders/{order_id}``).

The order names its creators (``affiliate_id``, repeated: the live conversion's and
any a correction replaced). Per creator and campaign-period of the campaign, one
``ZSCAN`` of the creator's journal with a pattern on the posting's order id, so only
matching postings leave Redis: O(c + the creator's postings in the campaign), each
checked again after decoding. A compacted period's postings come from its snapshot.
The conversions of the order the ledger refused (``refused_conversions``): one
``HGETALL`` of the order's hash, at most ``MAX_PER_ORDER`` fields.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from afflux.payouts import params, reads, refused_conversions, snapshots, views
from afflux.payouts.deps import AdminDep, ClockDep, ReplayedDep, StoreDep
from afflux.payouts.errors import ERROR_RESPONSES
from afflux.payouts.models import LineView, PostingView
from afflux.payouts.store import LedgerStore
from afflux.shared.core.journal.records import Posting, posting_from_json
from afflux.shared.wire import compact_json

# Half replayed, an order's postings read as none (deps.replayed): 503 until replayed.
router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, dependencies=[ReplayedDep])
MAX_AFFILIATES = 20
_GLOB_SPECIAL = "\\*?[]"


class RefusedConversionView(BaseModel):
    event_id: str = Field(description="the refused ConversionAttributed's event id")
    conversion_id: str
    affiliate_id: str
    reason: str = Field(description="the dead letter's reason")
    error_class: str = Field(description="e.g. CreatorSumOutOfRange, PeriodCompacted")
    refused_at: int = Field(description="when the ledger refused it (ms)")


class OrderPostingsAnswer(BaseModel):
    campaign_id: str
    order_id: str
    as_of: int
    postings: list[PostingView]
    lines: list[LineView] = Field(
        default_factory=list,
        description="the postings grouped by line, each with its explanation in the "
        "campaign's currency (what earned it, each refund, clawback or cap cut)",
    )
    refusals: list[RefusedConversionView] = Field(
        default_factory=list,
        description="conversions of this order the ledger refused (dead-lettered): "
        "nothing of them is in the postings",
    )


def order_patterns(order_id: str) -> list[str]:
    """ZSCAN MATCH patterns for postings of ``order_id`` as the journal stores them: its
    id JSON-escaped with non-ASCII as UTF-8, and (as older postings were written) as
    ``\\uXXXX`` escapes."""
    encodings = [
        orjson.dumps({"order_id": order_id}).decode()[1:-1],
        compact_json({"order_id": order_id})[1:-1],
    ]
    return [
        "*" + "".join("\\" + c if c in _GLOB_SPECIAL else c for c in encoded) + "*"
        for encoded in dict.fromkeys(encodings)
    ]


async def order_postings(
    store: LedgerStore, campaign_id: str, order_id: str, affiliates: list[str]
) -> list[Posting]:
    found: dict[str, Posting] = {}
    patterns = order_patterns(order_id)
    for affiliate in dict.fromkeys(affiliates):
        # A creator the ledger has not seen yet (the conversion still on its way) has none.
        for cid, period in await reads.creator_periods(store, affiliate):
            if cid != campaign_id:
                continue
            key = store.keys.period(cid, period, f"journal:{affiliate}")
            for pattern in patterns:
                async for member, _ in store.redis.zscan_iter(key, match=pattern, count=500):
                    posting = posting_from_json(orjson.loads(member))
                    if posting.order_id == order_id:
                        found[posting.posting_id] = posting
            for posting in await snapshots.snapshot_of(store, cid, period, affiliate):
                if posting.order_id == order_id:
                    found[posting.posting_id] = posting
    return sorted(found.values(), key=lambda p: (p.affiliate_id, p.period, p.seq))


@router.get(
    "/campaigns/{campaign_id}/orders/{order_id:path}/postings", response_model=OrderPostingsAnswer
)
async def postings_of_order(
    _: AdminDep,
    store: StoreDep,
    clock: ClockDep,
    campaign_id: str,
    order_id: str,
    affiliate_id: Annotated[list[str], Query(max_length=MAX_AFFILIATES)],
    as_of: str | None = None,
) -> dict[str, Any]:
    """Every posting of the named creators for this order (accruals, corrections,
    clawbacks, cap cuts and releases), in journal order per creator and period."""
    at = params.as_of(as_of, clock())
    postings = await order_postings(store, campaign_id, order_id, affiliate_id)
    refusals = await refused_conversions.of_order(store.redis, store.keys, campaign_id, order_id)
    return {
        "campaign_id": campaign_id,
        "order_id": order_id,
        "as_of": at,
        "postings": [views.posting_view(p, at) for p in postings],
        "lines": views.line_views(postings, at),
        "refusals": [asdict(r) for r in refusals],
    }
