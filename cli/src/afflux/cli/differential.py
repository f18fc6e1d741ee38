"""Differential fault runs: one seeded workload on a clean stack and on a stack under a
fault, compared per creator to the cent.

The batch oracle computes its answer from what the topics hold, so a fault that
changes what reaches the topics, or when, can fool it and the stack alike (a stall
that changes attribution agrees with itself). A differential run compares with the
clean run of the same workload instead: each creator's balances by state and net
amount per order from the payouts API must be equal (an amount taken back because a
late click re-decided the order is a correction, reported apart from refunds), and
every request the stack acknowledged (click, order, refund, lead confirmation) must be
on its topic exactly once, the topics read to the high watermark of a Fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka.errors import KafkaError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from afflux.cli.brokers import BrokerKind, broker_from_env
from afflux.cli.ledger_compare import admin_headers, creator_postings
from afflux.cli.processes import free_port
from afflux.cli.stack import SERVICES, Stack, StackOptions
from afflux.cli.storage import BrokerStorage
from afflux.cli.topic_to_end import TopicUnreadable, high_watermarks, read_to_end
from afflux.cli.traffic import creator_ids
from afflux.cli.workload import (
    WORKLOAD_CAMPAIGNS,
    Acknowledged,
    Endpoints,
    Progress,
    RequestError,
    plan,
    run_workload,
)
from afflux.payouts.consumer import TOPICS as LEDGER_TOPICS
from afflux.payouts.store import LedgerStore
from afflux.shared.events import (
    AnyEvent,
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
)
from afflux.shared.topics import CLICKS, CONVERSIONS, ORDERS, REFUNDS, REVERSALS, UNMATCHED

ADMIN_TOKEN = "differential-admin-token"  # noqa: S105 (a throwaway local stack)


@dataclass(frozen=True)
class CreatorLedger:
    balances: dict[str, dict[str, int]]  # currency -> state -> amount
    orders: dict[str, int]  # "campaign/order" -> net amount of the order's lines
    other: dict[str, int]  # "campaign kind period" -> sum of lines not tied to an order
    # "campaign/order" -> amount taken back because a late click gave the order to another
    # click (a correction): a posting the clean run need not have, left out of reversed
    corrections: dict[str, int] = field(default_factory=dict)


Snapshot = dict[str, CreatorLedger]


async def ledger_snapshot(
    payouts_url: str, creators: list[str], admin_token: str = ADMIN_TOKEN
) -> Snapshot:
    """Every creator's balances and per-order nets as the payouts API serves them."""
    out: Snapshot = {}
    async with httpx.AsyncClient(timeout=30, headers=admin_headers(admin_token)) as http:
        for creator in creators:
            balance = await http.get(f"{payouts_url}/v1/creators/{creator}/balance")
            if balance.status_code == 404:
                out[creator] = CreatorLedger({}, {}, {})
                continue
            balance.raise_for_status()
            orders: dict[str, int] = {}
            other: dict[str, int] = {}
            corrections: dict[str, int] = {}
            taken_back: dict[str, int] = {}  # currency -> amount
            for posting in await creator_postings(http, payouts_url, creator):
                amount = posting["amount_minor"]
                if posting["order_id"]:
                    key = f"{posting['campaign_id']}/{posting['order_id']}"
                    orders[key] = orders.get(key, 0) + amount
                else:
                    key = f"{posting['campaign_id']} {posting['line_kind']} {posting['period']}"
                    other[key] = other.get(key, 0) + amount
                taken = posting["component"] == "refund" or posting["component"].startswith(
                    "clawback"
                )
                if taken and "reattributed" in posting["rule"]:
                    corrections[key] = corrections.get(key, 0) - amount
                    currency = posting["currency"]
                    taken_back[currency] = taken_back.get(currency, 0) - amount
            states = {
                row["currency"]: {k: v for k, v in row.items() if k.endswith("_minor")}
                for row in balance.json()["balances"]
            }
            for currency, amount in taken_back.items():
                states[currency]["reversed_minor"] -= amount
            out[creator] = CreatorLedger(
                states,
                {k: v for k, v in orders.items() if v},
                {k: v for k, v in other.items() if v},
                corrections,
            )
    return out


def snapshot_differences(clean: Snapshot, faulty: Snapshot) -> list[str]:
    """Per creator, every balance state, order net and other line sum that differs."""
    differences = []
    for creator in sorted(set(clean) | set(faulty)):
        want = clean.get(creator, CreatorLedger({}, {}, {}))
        have = faulty.get(creator, CreatorLedger({}, {}, {}))
        for currency in sorted(set(want.balances) | set(have.balances)):
            w, h = want.balances.get(currency, {}), have.balances.get(currency, {})
            for state in sorted(set(w) | set(h)):
                if w.get(state, 0) != h.get(state, 0):
                    differences.append(
                        f"{creator}: {state} {h.get(state, 0)} {currency},"
                        f" the clean run has {w.get(state, 0)}"
                    )
        for part, w_items, h_items in (
            ("order", want.orders, have.orders),
            ("line", want.other, have.other),
        ):
            for key in sorted(set(w_items) | set(h_items)):
                if w_items.get(key, 0) != h_items.get(key, 0):
                    differences.append(
                        f"{creator}: {part} {key} nets {h_items.get(key, 0)},"
                        f" the clean run has {w_items.get(key, 0)}"
                    )
    return differences


def exactly_once_differences(acked: Acknowledged, topics: dict[str, list[AnyEvent]]) -> list[str]:
    """Each acknowledged request is one event on its topic: one click event per 302
    answered, one order, refund and confirmation event per id acknowledged. A record
    stored twice (the same event id) is at-least-once transport and counts once."""
    clicks: dict[str, set[str]] = {}
    orders: dict[tuple[str, str], set[str]] = {}
    refunds: dict[str, set[str]] = {}
    confirmations: dict[tuple[str, str], set[str]] = {}
    for e in topics[CLICKS.name]:
        if isinstance(e, ClickRecorded):
            clicks.setdefault(e.click_id, set()).add(e.event_id)
    for e in topics[ORDERS.name]:
        if isinstance(e, OrderPlaced):
            orders.setdefault((e.campaign_id, e.order_id), set()).add(e.event_id)
        elif isinstance(e, LeadConfirmed):
            confirmations.setdefault((e.campaign_id, e.order_id), set()).add(e.event_id)
    for e in topics[REFUNDS.name]:
        if isinstance(e, OrderRefunded):
            refunds.setdefault(e.refund_id, set()).add(e.event_id)
    differences: list[str] = []
    for what, wanted, found in (
        ("click", acked.clicks, clicks),
        ("order", acked.orders, orders),
        ("refund", acked.refunds, refunds),
        ("confirmation", acked.confirmations, confirmations),
    ):
        for key, times in Counter[object](wanted).items():
            events = len(found.get(key, set()))  # type: ignore[call-overload]
            if times > 1 and what == "click":
                differences.append(f"click {key}: {times} redirects answered the same id")
            if events != 1:
                differences.append(f"{what} {key}: acknowledged, {events} events on its topic")
    return differences


@dataclass(frozen=True)
class FaultFigure:
    """One fault as it happened: when it began and when what it broke was back."""

    name: str
    started: float  # monotonic
    back: float  # process healthy again, or the stall over

    @property
    def down_s(self) -> float:
        return self.back - self.started


@dataclass
class RunResult:
    snapshot: Snapshot
    acked: Acknowledged
    errors: list[RequestError]
    faults: list[FaultFigure]
    topic_differences: list[str]
    requests: int
    workload_s: float
    settle_s: float  # from the last acknowledged request until the ledger stopped changing
    topic_counts: dict[str, int] = field(default_factory=dict)

    def errors_after(self, started: float) -> list[RequestError]:
        return [e for e in self.errors if e.at >= started]

    def requests_failing_s(
        self, fault: FaultFigure, ack_times: list[float], until: float = float("inf")
    ) -> float:
        """From the fault's start until the first acknowledgement after its last error
        (errors from ``until`` on, the next fault's, are not its)."""
        errors = [e for e in self.errors_after(fault.started) if e.at < until]
        if not errors:
            return 0.0
        last = max(e.at for e in errors)
        after = [t for t in ack_times if t > last]
        return (min(after) if after else last) - fault.started


@dataclass
class Workload:
    seed: int = 11
    visitors: int = 40
    creators: int = 12
    merchant_clock_offset_ms: int = 0

    @property
    def creator_names(self) -> list[str]:
        return creator_ids(self.creators)


class DifferentialStack:
    """A fresh stack (Redis with AOF as ``afflux up`` runs it) for one run of the workload,
    on ``broker`` (the test run's choice when not given)."""

    def __init__(
        self, work_dir: Path, storage: BrokerStorage = "memory", broker: BrokerKind | None = None
    ) -> None:
        shutil.rmtree(work_dir, ignore_errors=True)
        self.stack = Stack(
            StackOptions(
                work_dir=work_dir,
                ports={name: free_port() for name in SERVICES},
                env={"AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN},
                redis_aof=True,
                storage=storage,
                broker=broker or broker_from_env(),
            )
        )
        self.faults: list[FaultFigure] = []
        self.ack_times: list[float] = []

    def start(self) -> DifferentialStack:
        try:
            self.stack.start_infra()
            self.stack.apply_campaigns(WORKLOAD_CAMPAIGNS)
            self.stack.start_all()
        except BaseException:
            self.stack.stop()
            raise
        return self

    def stop(self) -> None:
        self.stack.stop()

    @property
    def endpoints(self) -> Endpoints:
        s = self.stack
        return Endpoints(
            s.url("clicks"), s.url("orders"), s.url("payouts"), ADMIN_TOKEN, s.kafka_bootstrap
        )

    @contextlib.contextmanager
    def fault(self, name: str) -> Iterator[None]:
        """Times what runs inside as one fault, from its start until it returns."""
        started = time.monotonic()
        yield
        self.faults.append(FaultFigure(name, started, time.monotonic()))

    def run(
        self, workload: Workload, arrange: Callable[[Progress], None] | None = None
    ) -> RunResult:
        """The workload, with the faults ``arrange`` sets at progress points; then settle,
        snapshot and read the topics."""
        progress = Progress()
        if arrange is not None:
            arrange(progress)
        visits = plan(workload.seed, workload.visitors, workload.creators)
        started = time.monotonic()
        acked = asyncio.run(
            run_workload(
                self.endpoints,
                visits,
                progress,
                creators=workload.creator_names,
                merchant_clock_offset_ms=workload.merchant_clock_offset_ms,
            )
        )
        workload_s = time.monotonic() - started
        progress.join()
        if progress.pending_points():
            raise RuntimeError("the workload ended before every fault's progress point")
        self.ack_times = progress.ack_times
        unanswered = asyncio.run(outputs_complete(self.stack.kafka_bootstrap, acked))
        settle_s = asyncio.run(settled(self.stack.url("payouts"), min_wait_s=3.0, stack=self.stack))
        snapshot = asyncio.run(ledger_snapshot(self.stack.url("payouts"), workload.creator_names))
        topics = asyncio.run(read_inputs(self.stack.kafka_bootstrap))
        return RunResult(
            snapshot=snapshot,
            acked=acked,
            errors=progress.errors,
            faults=list(self.faults),
            topic_differences=exactly_once_differences(acked, topics)
            + [
                f"{what}: acknowledged, no answer from the attribution worker"
                for what in unanswered
            ],
            requests=progress.acks,
            workload_s=workload_s,
            settle_s=settle_s,
            topic_counts={name: len(events) for name, events in topics.items()},
        )


async def read_inputs(bootstrap: str) -> dict[str, list[AnyEvent]]:
    return {t.name: await read_to_end(bootstrap, t.name) for t in (CLICKS, ORDERS, REFUNDS)}


def missing_outputs(acked: Acknowledged, outputs: list[AnyEvent]) -> list[str]:
    """Acknowledged inputs the attribution worker has not answered yet: an order with no
    conversion nor unattributed record, a refund with no reversal nor unmatched record,
    a confirmation not forwarded."""
    decided = {
        (e.campaign_id, e.order_id)
        for e in outputs
        if isinstance(e, ConversionAttributed | OrderUnattributed)
    }
    refunded = {e.refund_id for e in outputs if isinstance(e, ConversionReversed | RefundUnmatched)}
    confirmed = {(e.campaign_id, e.order_id) for e in outputs if isinstance(e, LeadConfirmed)}
    return (
        [f"order {c}/{o}" for c, o in acked.orders if (c, o) not in decided]
        + [f"refund {r}" for r in acked.refunds if r not in refunded]
        + [f"confirmation {c}/{o}" for c, o in acked.confirmations if (c, o) not in confirmed]
    )


async def outputs_complete(
    bootstrap: str, acked: Acknowledged, limit_s: float = 120.0
) -> list[str]:
    """Wait until the worker answered every acknowledged input (a restarted worker may
    still be recovering when the ledger looks quiet); after ``limit_s`` go on, and the
    comparison shows what is missing (returned)."""
    deadline = time.monotonic() + limit_s
    missing = ["nothing read"]
    while time.monotonic() < deadline:
        outputs: list[AnyEvent] = []
        try:
            for topic in (CONVERSIONS, REVERSALS, UNMATCHED):
                outputs += await read_to_end(bootstrap, topic.name)
        except (TopicUnreadable, KafkaError):
            await asyncio.sleep(1)
            continue
        missing = missing_outputs(acked, outputs)
        if not missing:
            return []
        await asyncio.sleep(1)
    return missing


async def ledger_behind(bootstrap: str, redis_url: str) -> list[str]:
    """The partitions of the ledger's topics holding records the ledger has not applied:
    its next offsets in Redis below the high watermark a Fetch answers."""
    ends = await high_watermarks(bootstrap, LEDGER_TOPICS)
    redis: Redis[bytes] = Redis.from_url(redis_url)
    try:
        offsets = await LedgerStore(redis).offsets()
    finally:
        await redis.aclose()  # type: ignore[attr-defined]
    behind = []
    for tp, end in sorted(ends.items()):
        applied = offsets.get(f"{tp.topic}|{tp.partition}", 0)
        if applied < end:
            behind.append(f"{tp.topic}[{tp.partition}] applied to {applied} of {end}")
    return behind


async def settled(
    payouts_url: str,
    *,
    min_wait_s: float,
    quiet_s: float = 4.0,
    limit_s: float = 180.0,
    admin_token: str = ADMIN_TOKEN,
    stack: Stack | None = None,
) -> float:
    """Wait until the payouts totals have not changed for ``quiet_s`` (and at least
    ``min_wait_s``, the grace timers) and, given the ``stack``, the ledger has applied
    every record of its topics; return how long after the call the totals last changed.

    Quiet totals alone can be a ledger that holds no partition: after a payouts
    process is killed its partitions wait for the group to notice (the session timeout,
    10 s) before the restarted one is given them."""
    began = time.monotonic()
    last: object = None
    changed_at = began
    async with httpx.AsyncClient(timeout=10, headers=admin_headers(admin_token)) as http:
        while time.monotonic() - began < limit_s:
            try:
                answer = await http.get(f"{payouts_url}/v1/kpis/creators")
                now: object = answer.json() if answer.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                now = None
            if now != last:
                last, changed_at = now, time.monotonic()
            elif (
                time.monotonic() - began >= min_wait_s
                and time.monotonic() - changed_at >= quiet_s
                and (stack is None or not await _behind_or_unreadable(stack))
            ):
                return changed_at - began
            await asyncio.sleep(0.25)
    behind = await _behind_or_unreadable(stack) if stack is not None else []
    raise RuntimeError(f"the ledger did not settle within {limit_s:.0f}s {behind}".rstrip())


async def _behind_or_unreadable(stack: Stack) -> list[str]:
    try:
        return await ledger_behind(stack.kafka_bootstrap, stack.redis_url)
    except (TopicUnreadable, KafkaError, RedisError, OSError) as exc:  # a broker or Redis away
        return [f"not known yet: {exc!r}"]


@dataclass
class Comparison:
    differences: list[str]
    retried_errors: int
    creators: int
    corrections: list[str] = field(default_factory=list)  # not differences: see CreatorLedger

    @property
    def exact(self) -> bool:
        return not self.differences


def compare(clean: RunResult, faulty: RunResult) -> Comparison:
    """Per creator to the cent against the clean run, plus every acknowledged request on
    its topic exactly once; every request error was retried (the workload only ends
    when each request was acknowledged)."""
    differences = snapshot_differences(clean.snapshot, faulty.snapshot)
    differences += faulty.topic_differences
    if not any(ledger.orders for ledger in clean.snapshot.values()):
        differences.append("the clean run booked no order: nothing was compared")
    corrections = [
        f"{creator}: {key} taken back {amount} (reattributed)"
        for creator, ledger in sorted(faulty.snapshot.items())
        for key, amount in sorted(ledger.corrections.items())
        if clean.snapshot.get(creator, CreatorLedger({}, {}, {})).corrections.get(key) != amount
    ]
    return Comparison(differences, len(faulty.errors), len(clean.snapshot), corrections)


def report(name: str, result: RunResult, ack_times: list[float]) -> str:
    """One line per fault with its measured figures, for test output and the docs."""
    lines = [
        f"{name}: {result.requests} requests acknowledged in {result.workload_s:.1f}s,"
        f" {len(result.errors)} request errors retried; ledger final"
        f" {result.settle_s:.1f}s after the workload"
    ]
    for i, fault in enumerate(result.faults):
        later = result.faults[i + 1 :]
        next_start = later[0].started if later else float("inf")
        lines.append(
            f"  {fault.name}: back after {fault.down_s:.1f}s; requests failing for"
            f" {result.requests_failing_s(fault, ack_times, next_start):.1f}s"
        )
    first = result.faults[0].started if result.faults else float("inf")
    for error in result.errors[:3]:
        when = "before the first fault" if error.at < first else "during the faults"
        lines.append(f"  retried ({when}): {error.what}: {error.error}")
    return "\n".join(lines)
