"""The worker's two stages and the campaign view; Faust only delivers records.

Agents hand each record to ``Runtime.join.handle`` or ``Runtime.refunds.handle``
(see ``stage.Stage``); the timer calls ``tick``; ``/healthz`` asks ``health``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from afflux.attribution.content_view import ContentBook
from afflux.attribution.handlers import Campaigns, JoinHandler, RefundHandler
from afflux.attribution.join import DEFAULT_CLICKS_PER_VISITOR, JoinPartition
from afflux.attribution.metrics import SERVICE, AttributionMetrics
from afflux.attribution.outbox import Outbox
from afflux.attribution.refunds import RefundPartition
from afflux.attribution.stage import ARRIVAL_MARGIN_MS, Stage, Transport
from afflux.attribution.store import DiskStores
from afflux.shared.core.currency import CURRENCY_MISMATCH
from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS, EVENT_TIME_TOO_OLD
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.gc_policy import Refreezer
from afflux.shared.io.terms_recheck import TermsRecheck
from afflux.shared.topics import CLICKS, CONVERSIONS, ORDERS, REFUNDS, UNMATCHED

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 10.0
# A stage with input waiting that has written no batch (of records, a read-back or a
# tick: ``Stage.turned_at``) for this long is waiting on something that is not coming:
# /healthz says so. A batch takes milliseconds; the timer ticks every 25 ms by default.
STALL_S = 120.0
RECOVERY = (
    "stop every attribution worker, run `afflux attribution rebuild`, start them again"
    " (docs/reliability.md, 'A recreated input topic')"
)
RESTART = (
    "restart the worker: it recovers the stopped partitions from their changelogs and reads"
    " their input again; the log has the exception (docs/attribution.md, /healthz)"
)
RETRYING = (
    "none once the cause is gone: the worker retries the stopped partitions from their"
    " changelogs and reads their input again, with a back-off of at most 30 s; the log has"
    " the exception (docs/attribution.md, /healthz)"
)
# Refusals of ``handlers.Campaigns.refused`` that newer terms could lift (an event time
# too old is measured by the campaign's longest window and lock).
TERMS_REFUSALS = ("unknown campaign", "max_order_minor", CURRENCY_MISMATCH, EVENT_TIME_TOO_OLD)


class Runtime:
    def __init__(
        self,
        *,
        bootstrap: str,
        group: str,
        directory: CampaignDirectory,
        metrics: AttributionMetrics,
        transport: Transport,
        refund_wait_ms: int,
        order_retention_ms: int,
        clock: Callable[[], int] = system_clock,
        redecide: bool = True,
        clicks_per_visitor: int = DEFAULT_CLICKS_PER_VISITOR,
        clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
        backfill_limit_days: int | None = None,
        arrival_margin_ms: int = ARRIVAL_MARGIN_MS,
        disk: Callable[[str], DiskStores] | None = None,
        content: ContentBook | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.content = content if content is not None else ContentBook.without_content()
        self.metrics = metrics
        self.campaigns = Campaigns(directory, clock_skew_ms, backfill_limit_days, clock)
        # The refund stage reads back what the stages write to these (own_records.py).
        outbox = Outbox(metrics, clock, frozenset((CONVERSIONS.name, UNMATCHED.name)))
        self.join: Stage[JoinPartition] = Stage(
            "join",
            (CLICKS.name, ORDERS.name),
            f"{group}-join-state",
            JoinHandler(
                self.campaigns,
                metrics,
                order_retention_ms,
                redecide,
                self.content,
                clicks_per_visitor,
            ),
            transport,
            outbox,
            bootstrap,
            group,
            disk("join") if disk else None,
            arrival_margin_ms,
            monotonic,
        )
        # The join refuses events by their campaign's terms (an order's campaign, its
        # amount limit, currency and age): asked again once the view caught up. The
        # refund stage takes what the join decided; what it refuses by terms (a refund or
        # renewal older than the campaign's backfill limit, a renewal in another currency)
        # is final at once: holding a refund to the end of its batch would change the
        # order in which an order's refunds are capped.
        self.join.recheck = TermsRecheck(directory, clock, TERMS_REFUSALS)
        self.refunds: Stage[RefundPartition] = Stage(
            "refunds",
            (REFUNDS.name, CONVERSIONS.name, UNMATCHED.name),
            f"{group}-refund-state",
            RefundHandler(self.campaigns, refund_wait_ms, order_retention_ms),
            transport,
            outbox,
            bootstrap,
            group,
            disk("refunds") if disk else None,
            arrival_margin_ms,
            monotonic,
        )
        self.stages: tuple[Stage[Any], ...] = (self.join, self.refunds)
        self.assigned_once = False
        self._last_prune = 0.0
        self.refreezer = Refreezer()
        self.monotonic = monotonic
        # Stage agents that ended, with why (``agent_died``): until the worker restarts.
        self.dead: dict[str, str] = {}

    @property
    def changelogs(self) -> tuple[str, str]:
        return (self.join.changelog, self.refunds.changelog)

    def ready(self) -> bool:
        return (
            self.directory.ready.is_set()
            and self.content.ready.is_set()
            and self.assigned_once
            and not self.dead
            and all(stage.ready() for stage in self.stages)
        )

    def agent_died(self, name: str, exc: BaseException | None) -> None:
        """The agent feeding stage ``name`` ended: on ``exc``, or (None) its stream ended
        while the worker runs. Logged, and reported by /healthz until the worker
        restarts. Only the exception's text is kept: its traceback would hold the failed
        batch's records, which Faust waits for at every rebalance while anything refers
        to them."""
        why = "its stream ended" if exc is None else f"{exc!r}"[:1000]
        self.dead[name] = why
        log.error(
            "the %s agent died (%s): nothing more of its input is processed until the"
            " worker restarts",
            name,
            why,
            exc_info=exc,
        )

    def failures(self) -> list[str]:
        """Agents that died and partitions stopped by a failed batch until their retry
        (``Stage.failed``)."""
        problems = [f"{name} agent died: {why}" for name, why in sorted(self.dead.items())]
        problems += [
            f"{stage.name}[{p}] stopped: {why}"
            for stage in self.stages
            for p, why in sorted(stage.failed.items())
        ]
        return problems

    def stalls(self) -> list[str]:
        """Stages holding partitions with input waiting that wrote no batch for more than
        ``STALL_S``; read only here, so the hot path pays one timestamp per batch."""
        now = self.monotonic()
        found = []
        for stage in self.stages:
            idle_s = now - stage.turned_at
            if idle_s <= STALL_S or not stage.owned:
                continue
            waiting = sum(stage.lag(topic) for topic in stage.inputs)
            if waiting:
                found.append(
                    f"stalled: {stage.name} stage has not finished a batch for {idle_s:.0f} s"
                    f" ({waiting} input records waiting)"
                )
        return found

    def health(self, rebalancing: bool = False) -> tuple[bool, dict[str, Any]]:
        """/healthz: ready, and the body that says why not."""
        failures, stalls, diverged = self.failures(), self.stalls(), self.diverged()
        ok = self.ready() and not rebalancing and not stalls
        status = (
            "ok"
            if ok
            else "failed"
            if failures
            else "diverged"
            if diverged
            else "stalled"
            if stalls
            else "starting"
        )
        return ok, {
            "status": status,
            "problems": failures + stalls,
            "diverged": diverged,
            "recovery": RECOVERY
            if diverged
            else RESTART
            if self.dead
            else RETRYING
            if failures
            else None,
            "campaigns": self.directory.ready.is_set(),
            "content": self.content.ready.is_set(),
            "join_partitions": sorted(self.join.owned),
            "refund_partitions": sorted(self.refunds.owned),
        }

    def diverged(self) -> list[str]:
        """Why partitions were stopped (see Stage.diverged); empty while all is well."""
        return [
            f"{stage.name}[{p}]: {why}"
            for stage in self.stages
            for p, why in sorted(stage.diverged.items())
        ]

    def warm_up(self) -> None:
        """Before the first assignment: recover the disk store's partitions (see
        ``Partitions.warm_up``)."""
        for stage in self.stages:
            stage.warm_up()

    def assigned(self, tps: set[tuple[str, int]]) -> None:
        self.assigned_once = True
        for stage in self.stages:
            stage.assigned({p for t, p in tps if t in stage.inputs})

    def revoked(self, tps: set[tuple[str, int]]) -> None:
        """The group is rebalancing: nothing of these partitions is touched until the
        assignment (``Partitions.revoked``)."""
        for stage in self.stages:
            stage.revoked({p for t, p in tps if t in stage.inputs})

    def release_all(self) -> None:
        """The worker is stopping: every partition revoked, as at a rebalance."""
        for stage in self.stages:
            stage.revoked(stage.assignment | set(stage.owned) | set(stage.loading))

    async def tick(self) -> None:
        """Decide orders whose grace has passed and refunds that waited long enough
        (after reading back what the consumer left behind: ``Stage.catch_up``); every
        ``PRUNE_EVERY_S``, prune."""
        for stage in self.stages:
            stage.note()
        for stage in self.stages:
            stage.start_retries()  # in the background: recovery reads a changelog
            await stage.catch_up()
            await stage.tick()
        if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            await self.prune()
        self.refreezer.maybe_refreeze()
        self.gauges()

    async def prune(self) -> None:
        """Drop what no future event needs (see each handler's ``prune``)."""
        for stage in self.stages:
            await stage.prune()

    def gauges(self) -> None:
        """Set the gauges from the stages as they stand: at each tick, and at each scrape
        (so that /metrics says what /healthz says, not what the last tick saw)."""
        m = self.metrics
        m.ready.set(1 if self.ready() else 0)
        for stage in self.stages:
            m.child(m.diverged, stage.name).set(len(stage.diverged))
            m.child(m.failed, stage.name).set(len(stage.failed))
            m.child(m.state_keys, stage.name).set(
                sum(len(o.state.keys) for o in stage.owned.values())
            )
            for topic in stage.inputs:
                m.child(m.consumer_lag, SERVICE, topic).set(stage.lag(topic))


async def run_forever(coro_factory: Callable[[], Any]) -> None:
    while True:
        try:
            await coro_factory()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("campaign follower failed; restarting")
            await asyncio.sleep(1)
