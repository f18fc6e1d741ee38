"""What ``afflux bench ledger`` reads back after a run: facts, offsets, the journal
netted against the commission reference, and the memory the ledger's keys take.

The journal check is the one the arrival-order tests make, at the bench's size: every
posting of every creator in every campaign-period (the ``journal:<affiliate>`` sorted
sets), summed per (line id, approval time), must equal what the oracle
(``afflux.oracle.commission``) computes from all the generated events at once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from afflux.oracle import reference_from_events, target_amounts
from afflux.payouts.keys import Keys
from afflux.payouts.store import LedgerStore
from afflux.shared.core.journal.records import posting_from_json
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.redis_client import connect_ready

Targets = dict[tuple[str, int], int]  # (line id, approval time) -> net amount


def only_versions(campaigns: Iterable[CampaignTerms]) -> dict[str, tuple[TermsVersion, ...]]:
    """Each campaign's one terms version, in force from the epoch (as the bench publishes)."""
    return {
        t.campaign_id: (TermsVersion(version=1, effective_from=0, published_at=0, terms=t),)
        for t in campaigns
    }


def directory_of(campaigns: Iterable[CampaignTerms]) -> CampaignDirectory:
    """A campaign view that has seen each campaign's one version published."""
    directory = CampaignDirectory()
    for cid, versions in only_versions(campaigns).items():
        directory.apply(
            CampaignTermsPublished(
                event_id=f"terms-{cid}", occurred_at=0, campaign_id=cid, versions=versions
            )
        )
    return directory


def oracle_targets(events: Iterable[object], campaigns: Iterable[CampaignTerms]) -> Targets:
    """What every line must net to per approval time, from all the events at once."""
    out: Targets = {}
    for lines in reference_from_events(events, only_versions(campaigns)).values():
        out.update(target_amounts(lines))
    return out


@dataclass(frozen=True)
class Journal:
    nets: Targets  # the postings summed per (line id, approval time), zeros left out
    postings: int
    active_creators: int  # creators with at least one posting


@dataclass(frozen=True)
class ReadBack:
    facts: int  # ids in the periods' ``events`` and ``clickids`` sets
    lines: int
    periods: int
    offsets: dict[str, int]
    journal: Journal


async def read_back(redis: Redis[bytes], affiliates: Sequence[str], keys: Keys) -> ReadBack:
    """Everything the ledger holds that the bench checks, by key (on a plain Redis or a
    cluster alike): the campaign-periods from the ``cps`` index, each creator's journal
    in each of them."""
    raw_cps = await redis.smembers(keys.ledger("cps"))
    cps = sorted(tuple(m.decode().split("|", 1)) for m in raw_cps)
    async with redis.pipeline(transaction=False) as pipe:
        for cid, period in cps:
            pipe.scard(keys.period(cid, period, "events"))
            pipe.scard(keys.period(cid, period, "clickids"))
            pipe.hlen(keys.period(cid, period, "lines"))
        counts = await pipe.execute()
    nets: Targets = defaultdict(int)
    postings = 0
    active: set[str] = set()
    for cid, period in cps:
        async with redis.pipeline(transaction=False) as pipe:
            for affiliate in affiliates:
                pipe.zrange(keys.period(cid, period, f"journal:{affiliate}"), 0, -1)
            journals = await pipe.execute()
        for affiliate, entries in zip(affiliates, journals, strict=True):
            if entries:
                active.add(affiliate)
            for entry in entries:
                posting = posting_from_json(json.loads(entry))
                nets[(posting.line_id, posting.approve_at)] += posting.amount_minor
                postings += 1
    offsets = await LedgerStore(redis, keys).offsets()
    return ReadBack(
        facts=sum(counts[0::3]) + sum(counts[1::3]),
        lines=sum(counts[2::3]),
        periods=len(cps),
        offsets=offsets,
        journal=Journal({k: v for k, v in nets.items() if v}, postings, len(active)),
    )


def differences(journal: Targets, oracle: Targets) -> list[tuple[tuple[str, int], int, int]]:
    """(line id, approval time), the journal's net, the oracle's: where they differ."""
    return [
        (key, journal.get(key, 0), oracle.get(key, 0))
        for key in sorted(journal.keys() | oracle.keys())
        if journal.get(key, 0) != oracle.get(key, 0)
    ]


# The parts of a period's slot by what they keep (keys.py): the postings themselves,
# the per-event facts that expire after the retention, and the rest (running sums,
# tallies, counters, indexes). A conversion's claim on its period
# (``{cv:<campaign>|<conversion>}:period``) expires with them.
_PER_EVENT = ("lines", "events", "clickids", "confirmed", "period")


def key_kind(key: str) -> str:
    name = key.rpartition("}:")[2]
    if name.startswith("journal:"):
        return "journal"
    if name in _PER_EVENT:
        return "per_event"
    return "other"


async def memory_by_kind(redis: Redis[bytes], keys: Keys) -> dict[str, int]:
    """Bytes of every ledger key (``MEMORY USAGE key SAMPLES 0``: every element counted,
    not a sample), summed by ``key_kind``."""
    names: list[str] = []
    scan: Any = redis.scan_iter(match=f"{keys.prefix}*", count=1000)
    async for name in scan:
        names.append(name.decode())
    by_kind: dict[str, int] = defaultdict(int)
    for start in range(0, len(names), 5_000):
        chunk = names[start : start + 5_000]
        async with redis.pipeline(transaction=False) as pipe:
            for name in chunk:
                pipe.memory_usage(name, samples=0)
            sizes = await pipe.execute()
        for name, size in zip(chunk, sizes, strict=True):
            by_kind[key_kind(name)] += int(size or 0)
    return dict(by_kind)


async def inspect_ledger(
    url: str, affiliates: Sequence[str], *, memory: bool
) -> tuple[ReadBack, dict[str, int]]:
    """``read_back`` of the ledger at ``url`` and, when asked, ``memory_by_kind``."""
    # A RedisCluster speaks the same commands; its type stubs do not say so.
    redis = cast("Redis[bytes]", await connect_ready(url))
    try:
        found = await read_back(redis, affiliates, Keys())
        sizes = await memory_by_kind(redis, Keys()) if memory else {}
        return found, sizes
    finally:
        await redis.aclose()  # type: ignore[attr-defined]
