"""A compacted campaign-period's statement snapshot, and the reads that fall back to it.

Compaction (``compaction``) replaces a closed, fully paid period's per-posting keys
with, in the period's slot:

- ``{p:…}:snapshot``, a hash: creator -> every posting of the creator in the
  period, in sequence order, as one value: zlib of the JSON
  ``{"v": 1, "currency", "fields", "rows"}`` (one row of values per posting,
  without what every posting of the period shares), in base64 (the
  compare-and-set carries text);
- ``{p:…}:compacted``, a hash: ``at`` (when, UTC ms), ``currency``,
  ``approved_by`` (the latest approval time of any posting), ``postings``,
  ``creators``.

A creator's postings are either in ``journal:<a>`` or in the snapshot, never both
(compaction deletes the journal in the same step). Reads ask for both in one
pipeline, the journal first: a compaction between the two commands leaves the
journal read whole, or both read after it.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from redis.asyncio import Redis

from afflux.payouts.keys import Keys
from afflux.shared.core.journal.records import Posting, posting_from_json

if TYPE_CHECKING:
    from afflux.payouts.store import LedgerStore

CampaignPeriod = tuple[str, str]
FORMAT = 1
# What every posting of one creator's snapshot shares: kept once, not per row.
_SHARED = ("affiliate_id", "campaign_id", "period", "currency")
_ROW = tuple(name for name in Posting.__slots__ if name not in _SHARED)


# How a compacted period's ``ver`` token starts: ``compacted/<at ms>/<seq>``.
COMPACTED_TOKEN = b"compacted/"


class PeriodCompacted(Exception):
    """The campaign-period was compacted: its statement is final, the ledger takes no
    more facts for it (the consumer dead-letters them with this message)."""

    def __init__(self, campaign_id: str, period: str, at: int) -> None:
        when = datetime.fromtimestamp(at / 1000, tz=UTC).isoformat()
        super().__init__(
            f"campaign {campaign_id!r} period {period!r} was compacted at {when}: its "
            "statement is final and takes no more facts (afflux ledger rebuild replays it)"
        )


class PeriodExpired(Exception):
    """The campaign-period's per-event facts (its lines and fact ids) expired after the
    retention while it was not compacted (a creator below the minimum payout keeps it
    open): a fact for it would be priced from nothing, so the ledger takes no more facts
    for it (the consumer dead-letters them with this message)."""

    def __init__(self, campaign_id: str, period: str, until: int) -> None:
        when = datetime.fromtimestamp(until / 1000, tz=UTC).isoformat()
        super().__init__(
            f"campaign {campaign_id!r} period {period!r}: its per-event facts expired at "
            f"{when} (AFFLUX_LEDGER_RETENTION_DAYS after it closed to new facts), so a fact "
            "for it can no longer be priced (afflux ledger rebuild replays it)"
        )


def encode(postings: Sequence[Posting]) -> str:
    """One creator's postings of one period (sequence order), compressed, as text."""
    currency = postings[0].currency if postings else ""
    rows = [[_value(getattr(p, name)) for name in _ROW] for p in postings]
    data = orjson.dumps({"v": FORMAT, "currency": currency, "fields": _ROW, "rows": rows})
    return base64.b64encode(zlib.compress(data, 9)).decode()


def decode(value: bytes | str, affiliate: str, campaign_id: str, period: str) -> list[Posting]:
    data = orjson.loads(zlib.decompress(base64.b64decode(value)))
    if data["v"] != FORMAT:
        raise ValueError(f"snapshot format {data['v']!r}, this version reads {FORMAT}")
    shared = {
        "affiliate_id": affiliate,
        "campaign_id": campaign_id,
        "period": period,
        "currency": data["currency"],
    }
    fields = data["fields"]
    return [
        posting_from_json({**shared, **dict(zip(fields, row, strict=True))}) for row in data["rows"]
    ]


def _value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


async def refuse_compacted(redis: Redis[bytes], keys: Keys, campaign_id: str, period: str) -> None:
    """Raise ``PeriodCompacted`` when the period was compacted."""
    at: bytes | None = await redis.hget(keys.period(campaign_id, period, "compacted"), "at")
    if at is not None:
        raise PeriodCompacted(campaign_id, period, int(at))


async def snapshot_of(
    store: LedgerStore, campaign_id: str, period: str, affiliate: str
) -> list[Posting]:
    """The creator's postings in the period's snapshot (none: not compacted)."""
    value = await store.redis.hget(store.keys.period(campaign_id, period, "snapshot"), affiliate)
    return [] if value is None else decode(value, affiliate, campaign_id, period)


async def postings_after(
    store: LedgerStore, campaign_id: str, period: str, affiliate: str, seq: int, count: int
) -> list[Posting]:
    """Up to ``count`` of the creator's postings in the period after ``seq``: from its
    journal, else from the period's snapshot."""
    k = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.zrangebyscore(
            k.period(campaign_id, period, f"journal:{affiliate}"),
            f"({seq}",
            "+inf",
            start=0,
            num=count,
        )
        pipe.hget(k.period(campaign_id, period, "snapshot"), affiliate)
        journal, snapshot = await pipe.execute()
    if journal or snapshot is None:
        return [posting_from_json(orjson.loads(x)) for x in journal]
    kept = [p for p in decode(snapshot, affiliate, campaign_id, period) if p.seq > seq]
    return kept[:count]


async def postings_in(
    store: LedgerStore, affiliate: str, cps: Sequence[CampaignPeriod]
) -> list[Posting]:
    """Every posting of the creator in ``cps``, in (campaign, period, seq) order, from
    the journals and, for compacted periods, the snapshots."""
    k = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        for cid, period in cps:
            pipe.zrange(k.period(cid, period, f"journal:{affiliate}"), 0, -1)
            pipe.hget(k.period(cid, period, "snapshot"), affiliate)
        answers: list[Any] = await pipe.execute()
    out: list[Posting] = []
    for n, (cid, period) in enumerate(cps):
        journal, snapshot = answers[2 * n], answers[2 * n + 1]
        if journal or snapshot is None:
            out += [posting_from_json(orjson.loads(x)) for x in journal]
        else:
            out += decode(snapshot, affiliate, cid, period)
    return out


async def compacted_sums(
    store: LedgerStore, affiliate: str, cps: Sequence[CampaignPeriod], as_of: int
) -> dict[CampaignPeriod, tuple[str, int]]:
    """Per compacted campaign-period of ``cps`` that holds postings of the creator: the
    period's currency and what of them is approved only after ``as_of`` (0 once
    ``as_of`` reaches the period's latest approval; else read from the snapshot)."""
    if not cps:
        return {}
    k = store.keys
    async with store.redis.pipeline(transaction=False) as pipe:
        for cid, period in cps:
            pipe.hmget(k.period(cid, period, "compacted"), ["currency", "approved_by"])
            pipe.hexists(k.period(cid, period, "snapshot"), affiliate)
        answers: list[Any] = await pipe.execute()
    out: dict[CampaignPeriod, tuple[str, int]] = {}
    for n, cp in enumerate(cps):
        (currency, approved_by), held = answers[2 * n], answers[2 * n + 1]
        if currency is None or not held:
            continue
        pending = 0
        if as_of < int(approved_by):
            postings = await postings_in(store, affiliate, [cp])
            pending = sum(p.amount_minor for p in postings if p.approve_at > as_of)
        out[cp] = (currency.decode(), pending)
    return out


async def pending_amounts(
    store: LedgerStore,
    wanted: Sequence[tuple[str, str, str]],
    approved_by: Sequence[int | None],
    as_of: int,
) -> list[int]:
    """Per (campaign, period, creator) of ``wanted``, whose period was compacted with the
    last approval ``approved_by`` (None: not compacted when its figures were read, so
    its approval schedule holds the pending part): what of the creator's postings is
    approved only after ``as_of``."""
    out = [0] * len(wanted)
    for i, ((cid, period, affiliate), last) in enumerate(zip(wanted, approved_by, strict=True)):
        if last is not None and as_of < last:
            postings = await postings_in(store, affiliate, [(cid, period)])
            out[i] = sum(p.amount_minor for p in postings if p.approve_at > as_of)
    return out
