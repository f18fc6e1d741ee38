"""Compacting closed, fully paid campaign-periods into statement snapshots.

For each campaign-period (of the ledger, or of one campaign): skip it unless it is
closed at ``now`` (``afflux.shared.core.journal.compaction.closes_at``, nothing
read); else read its creators with postings and their journals, their postings in
the campaign's earlier periods (``sums``) and what payout runs paid them in the
campaign, and ask the pure ``verdict``. A compactable period is written in ONE
compare-and-set on its ``ver``: the snapshot of every creator's postings and the
``compacted`` marker (``snapshots``) written, the per-posting and per-event keys
(``journal:<a>``, ``due:<a>``, ``dueamt:<a>``, ``lines``, ``events``,
``clickids``, ``confirmed``) deleted; ``sums``, ``kpis`` and ``clicks`` (the
statement's totals and KPIs) stay. A ledger write in between changes ``ver``: the
step fails, and the period is read and judged again (at most ``ATTEMPTS`` times).

The creators with postings are those named in the period's ``sums``, ``kpis`` and
``clicks``; the period is compacted only if their journals hold every posting the
period has (the ``seq`` of its ``ver`` token), so none is ever left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from afflux.payouts import payout_records, reads, snapshots
from afflux.payouts.approved import approved_parts
from afflux.payouts.store import QUEUE_SET, QUEUE_WRITTEN, LedgerStore
from afflux.shared.core.clock import Clock
from afflux.shared.core.journal.compaction import (
    DEFAULT_GRACE_MS,
    CreatorStanding,
    PeriodStanding,
    closes_at,
    verdict,
)
from afflux.shared.core.journal.records import Posting, posting_from_json
from afflux.shared.core.journal.review_queue import STATUSES
from afflux.shared.core.periods import BadPeriod, period_bounds
from afflux.shared.core.terms import TermsVersion
from afflux.shared.io.redis_client import WriteCommand, compare_and_set

log = logging.getLogger(__name__)
Versions = Callable[[str], Sequence[TermsVersion]]
ATTEMPTS = 3
PER_EVENT = (
    "lines",
    "events",
    "clickids",
    "confirmed",
    "facts_until",
    # The review queue's status sets: a compacted period holds no held conversion, and
    # its decided ones leave the queue with their line records.
    *(QUEUE_SET + s for s in STATUSES),
    QUEUE_WRITTEN,
)
KEPT = ("sums", "kpis", "clicks")
_PAIRS = 1_000  # field/value pairs per HSET


@dataclass(frozen=True)
class Outcome:
    """What a pass did with one campaign-period."""

    campaign_id: str
    period: str
    compacted: bool
    reason: str
    creators: int = 0
    postings: int = 0
    bytes_before: int = 0  # MEMORY USAGE of the period's keys
    bytes_after: int = 0  # after compaction (a dry run: the kept keys + the snapshot's text)


@dataclass
class _Read:
    token: bytes | None
    seq: int
    journals: dict[str, list[Posting]]  # creator -> postings, seq order


REBUILDING = "the ledger is being rebuilt"


async def ledger_behind(store: LedgerStore) -> str:
    """Why no period may be compacted now ('' when none): a rebuild under way, or its
    replay not done (the ledger's stored positions behind the topics' ends as they were
    when ``afflux ledger rebuild`` cleared it, ``replay-until``). A period judged while its
    facts were still being replayed read against the payout records kept as paid in
    full: a pass compacted a half-replayed period, the rest of its facts was refused,
    and the creator's balance showed a debt that was none. Once the positions reach
    those ends the mark is deleted."""
    mark = store.keys.ledger("replay-until")
    # One round trip (both keys are in the {ledger} slot): every money read asks it.
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.exists(store.keys.ledger("rebuilding"))
        pipe.exists(mark)
        rebuilding, marked = await pipe.execute()
    if rebuilding:
        return REBUILDING
    if not marked:
        return ""
    raw = await store.redis.hgetall(mark)
    if not raw:
        return ""
    if b"pending" in raw:
        return "the ledger's replay has not read the topics' ends yet"
    ends = {name.decode(): int(value) for name, value in raw.items()}
    stored = await store.offsets()
    behind = {tp: end - stored.get(tp, 0) for tp, end in ends.items() if stored.get(tp, 0) < end}
    if not behind:
        await store.redis.delete(mark)
        return ""
    named = ", ".join(f"{tp} by {n}" for tp, n in sorted(behind.items())[:3])
    more = f" and {len(behind) - 3} more" if len(behind) > 3 else ""
    return f"the rebuilt ledger has not replayed its topics yet ({named}{more} records)"


async def compact_pass(
    store: LedgerStore,
    versions: Versions,
    now: int,
    *,
    campaign: str | None = None,
    grace_ms: int = DEFAULT_GRACE_MS,
    dry_run: bool = False,
    measure: bool = True,
) -> list[Outcome]:
    """Judge (and unless ``dry_run`` compact) every campaign-period, or ``campaign``'s;
    none while a rebuild's replay is under way (``ledger_behind``: each says why)."""
    if campaign is not None:
        cps = [(campaign, p) for p in await reads.campaign_periods(store, campaign)]
    else:
        cps = await reads.all_periods(store)
    waiting = await ledger_behind(store)
    if waiting:
        return [Outcome(cid, period, False, waiting) for cid, period in cps]
    out = []
    for cid, period in cps:
        try:
            terms = versions(cid)
        except LookupError:  # a campaign the campaigns topic does not (yet) know
            terms = ()
        out.append(
            await compact_period(
                store,
                terms,
                cid,
                period,
                now,
                grace_ms=grace_ms,
                dry_run=dry_run,
                measure=measure,
            )
        )
    return out


async def compact_period(
    store: LedgerStore,
    versions: Sequence[TermsVersion],
    cid: str,
    period: str,
    now: int,
    *,
    grace_ms: int = DEFAULT_GRACE_MS,
    dry_run: bool = False,
    measure: bool = True,
) -> Outcome:
    if not versions:
        return Outcome(cid, period, False, "no terms for the campaign")
    try:
        closing = closes_at(period, versions, grace_ms)
    except BadPeriod as exc:
        return Outcome(cid, period, False, str(exc))
    if now < closing:
        return Outcome(cid, period, False, f"open until {closing} (ms)")
    k = store.keys
    for _ in range(ATTEMPTS):
        # Checked on every attempt: another pass (another replica) may have just done it.
        if await store.redis.exists(k.period(cid, period, "compacted")):
            return Outcome(cid, period, False, "already compacted")
        read = await _read_period(store, cid, period)
        held = sum(len(p) for p in read.journals.values())
        if held != read.seq:
            reason = f"its journals hold {held} of its {read.seq} postings: left as it is"
            return Outcome(cid, period, False, reason)
        standing = await _standing(store, versions, cid, period, read, now)
        judged = verdict(standing, now, grace_ms)
        if not judged.compactable:
            return Outcome(cid, period, False, judged.reason, len(read.journals), held)
        creators = sorted(read.journals)
        before = await _memory(store, cid, period, creators) if measure else 0
        commands, snapshot_bytes = _compaction(store, cid, period, read, now)
        if dry_run:
            kept = await _memory(store, cid, period, [], only=(*KEPT, "ver")) if measure else 0
            return Outcome(
                cid,
                period,
                False,
                "would compact (dry run)",
                len(creators),
                held,
                before,
                kept + snapshot_bytes,
            )
        token = snapshots.COMPACTED_TOKEN + f"{now}/{read.seq}".encode()
        if await compare_and_set(
            store.redis, k.period(cid, period, "ver"), read.token, token, commands
        ):
            after = await _memory(store, cid, period, []) if measure else 0
            return Outcome(cid, period, True, judged.reason, len(creators), held, before, after)
        # The ledger wrote the period meanwhile (a backfill): judge it again.
    return Outcome(cid, period, False, f"written to {ATTEMPTS} times while compacting: skipped")


async def _read_period(store: LedgerStore, cid: str, period: str) -> _Read:
    k = store.keys

    def at(name: str) -> str:
        return k.period(cid, period, name)

    token: bytes | None = await store.redis.get(at("ver"))
    async with store.redis.pipeline(transaction=False) as pipe:
        for name in KEPT:
            pipe.hkeys(at(name))
        named: list[list[bytes]] = await pipe.execute()
    creators = sorted({_creator(name.decode()) for fields in named for name in fields} - {""})
    async with store.redis.pipeline(transaction=False) as pipe:
        for a in creators:
            pipe.zrange(at(f"journal:{a}"), 0, -1)
        raw: list[list[bytes]] = await pipe.execute()
    journals = {
        a: [posting_from_json(orjson.loads(x)) for x in members]
        for a, members in zip(creators, raw, strict=True)
        if members
    }
    seq = int(token.decode().rpartition("/")[2]) if token else 0
    return _Read(token, seq, journals)


def _creator(field: str) -> str:
    """The creator a ``sums``, ``kpis`` or ``clicks`` field names: its second part
    (``total|<a>``, ``conversions|<a>|<day>``, ``r|<a>``, ``x|<a>|<reason>``)."""
    parts = field.split("|")
    return parts[1] if len(parts) > 1 else ""


async def _standing(
    store: LedgerStore,
    versions: Sequence[TermsVersion],
    cid: str,
    period: str,
    read: _Read,
    now: int,
) -> PeriodStanding:
    creators = sorted(read.journals)
    start = period_bounds(period)[0]
    earlier, later = [], []
    for p in await reads.campaign_periods(store, cid):
        with contextlib.suppress(BadPeriod):
            if period_bounds(p)[0] < start:
                earlier.append((cid, p))
            elif period_bounds(p)[0] > start:
                later.append((cid, p))
    before = await reads.period_creator_sums(store, earlier)
    after = await reads.period_creator_sums(store, later)
    standings = []
    for a in creators:
        postings = read.journals[a]
        records = await payout_records.records_of(store, a)
        paid = payout_records.paid_by_campaign(records).get(cid, 0)
        owed = sum(p.amount_minor for p in postings) + sum(s.get(a, 0) for s in before)
        # A run pays whatever is approved, whatever its period: a later period approved
        # no later than this one's last posting (a version with a shorter lock) took
        # the money first, so it is owed before this period counts as paid; as far as
        # it still stands now (a clawback approved since gave that money back).
        last = max((p.approve_at for p in postings), default=0)
        wanted = [(c, p, a) for (c, p), sums in zip(later, after, strict=True) if a in sums]
        then, since = (
            await approved_parts(store, wanted, last),
            await approved_parts(store, wanted, now),
        )
        owed += max(0, min(sum(then), sum(since)))
        pending = sum(p.amount_minor for p in postings if p.approve_at > now)
        standings.append(CreatorStanding(a, pending=pending, owed_through=owed, paid=paid))
    return PeriodStanding(cid, period, tuple(versions), tuple(standings))


def _compaction(
    store: LedgerStore, cid: str, period: str, read: _Read, now: int
) -> tuple[list[WriteCommand], int]:
    """The writes that compact the period, and the snapshot's size in bytes."""
    k = store.keys

    def at(name: str) -> str:
        return k.period(cid, period, name)

    encoded = [(a, snapshots.encode(ps)) for a, ps in sorted(read.journals.items())]
    every = [p for ps in read.journals.values() for p in ps]
    marker: dict[str, Any] = {
        "at": now,
        "currency": every[0].currency if every else "",
        "approved_by": max((p.approve_at for p in every), default=0),
        "postings": len(every),
        "creators": len(encoded),
    }
    commands: list[WriteCommand] = []
    for i in range(0, len(encoded), _PAIRS):
        chunk = encoded[i : i + _PAIRS]
        commands.append(("HSET", at("snapshot"), *[x for pair in chunk for x in pair]))
    commands.append(("HSET", at("compacted"), *[x for pair in marker.items() for x in pair]))
    for a in sorted(read.journals):
        for name in (f"journal:{a}", f"due:{a}", f"dueamt:{a}"):
            commands.append(("DEL", at(name)))
    for name in PER_EVENT:
        commands.append(("DEL", at(name)))
    return commands, sum(len(a) + len(v) for a, v in encoded)


async def _memory(
    store: LedgerStore,
    cid: str,
    period: str,
    creators: Sequence[str],
    only: Sequence[str] | None = None,
) -> int:
    """``MEMORY USAGE`` summed over the period's keys (``only`` those names)."""
    names = (
        list(only)
        if only is not None
        else ["ver", *KEPT, *PER_EVENT, "snapshot", "compacted", "outbox"]
    )
    if only is None:
        names += [f"{kind}:{a}" for a in creators for kind in ("journal", "due", "dueamt")]
    async with store.redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.memory_usage(store.keys.period(cid, period, name), samples=0)
        sizes: list[int | None] = await pipe.execute()
    return sum(s or 0 for s in sizes)


async def run_every(
    store: LedgerStore,
    versions: Versions,
    ready: asyncio.Event,
    interval_s: float,
    grace_ms: int,
    clock: Clock,
    *,
    passes: int | None = None,
) -> None:
    """The payouts service's scheduled pass: one pass every ``interval_s``, the first
    one interval after start (and after the campaign view caught up); ``passes``
    bounds how many (None: until cancelled)."""
    await ready.wait()
    me = asyncio.current_task()
    done_passes = 0
    while passes is None or done_passes < passes:
        await asyncio.sleep(interval_s)
        done_passes += 1
        try:
            outcomes = await compact_pass(
                store, versions, clock(), grace_ms=grace_ms, measure=False
            )
        except Exception:
            if me is not None and me.cancelling():  # a cancel the client turned into an error
                raise asyncio.CancelledError from None
            log.exception("ledger compaction pass failed; the next one tries again")
            continue
        done = [o for o in outcomes if o.compacted]
        log.info(
            "ledger compaction: %d of %d campaign-periods compacted (%d postings)",
            len(done),
            len(outcomes),
            sum(o.postings for o in done),
        )
