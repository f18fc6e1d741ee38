"""What-if replays in the payouts process: one at a time, in a thread of its own (the
replay is CPU work; the event loop keeps serving the ledger and the API), bounded by
``AFFLUX_WHATIF_MAX_EVENTS``, ``AFFLUX_WHATIF_MAX_CAMPAIGN_EVENTS`` and
``AFFLUX_WHATIF_TIME_LIMIT_S`` (docs/reliability.md); while others wait, a principal's
next replay only after as long as its last took (afflux.payouts.whatif_turns).

The draft is checked before anything is read: a draft that is not the campaign's own
(campaign, merchant, currency) is a 422 naming the field, as invalid terms are.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Sequence

from aiokafka.errors import KafkaError

from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.whatif_turns import Turns
from afflux.shared.core.access import Principal
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.diff import WhatIfDiff, draft_problem
from afflux.shared.core.whatif.log import DateRange
from afflux.shared.io.http.problems import Problem
from afflux.shared.io.whatif_source import ReplayBounds, ReplayRefused, run_whatif

_ONE_AT_A_TIME = threading.Lock()
_TURNS = Turns()


class ReplayAbandoned(Exception):
    """The request went away before its replay's thread started: nobody awaits it."""


class _Handoff:
    """Who frees the slot: the replay's thread once it runs, or the request when it went
    away before the thread started (a cancelled ``to_thread`` never runs its function,
    and the slot stayed held for good: every later what-if of the process a 429)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._state = "waiting"

    def take(self) -> bool:
        """In the thread: run, unless the request gave up first."""
        with self._guard:
            if self._state == "given_up":
                return False
            self._state = "running"
            return True

    def give_up(self) -> bool:
        """In the request: True when the thread never started (and now never will)."""
        with self._guard:
            if self._state == "running":
                return False
            self._state = "given_up"
            return True


def whose(principal: Principal) -> str:
    """Whose turn a replay counts in: the merchant (every key of it), or the admin."""
    return f"{principal.role}:{principal.subject or ''}"


def check_draft(draft: CampaignTerms, versions: Sequence[TermsVersion], field: str) -> None:
    latest = max(versions, key=lambda v: v.version).terms
    problem = draft_problem(draft, latest)
    if problem is not None:
        raise Problem(422, f"{field}.{problem[0]}", problem[1])


async def replay_draft(
    settings: PayoutsSettings,
    metrics: PayoutsMetrics,
    versions: Sequence[TermsVersion],
    draft: CampaignTerms,
    window: DateRange,
    who: str,
) -> WhatIfDiff:
    """The diff, or a Problem: 429 while another replay runs or before ``who``'s turn
    (``Retry-After``), 413 past the events bound, 503 past the time limit or with the
    broker away."""
    wait_s = _TURNS.wait_s(who, time.monotonic())
    if wait_s > 0:
        metrics.whatif.labels("busy").inc()
        raise Problem(
            429,
            None,
            "others are waiting for a what-if: your next may start in "
            f"{math.ceil(wait_s)} s, as long as your last one took",
            headers={"Retry-After": str(math.ceil(wait_s))},
        )
    if not _ONE_AT_A_TIME.acquire(blocking=False):
        metrics.whatif.labels("busy").inc()
        _TURNS.refused_busy(who, time.monotonic())
        raise Problem(
            429,
            None,
            "another what-if is running: try again when it is done",
            headers={"Retry-After": "1"},
        )
    bounds = ReplayBounds(
        settings.whatif_max_events,
        settings.whatif_time_limit_s,
        settings.whatif_max_campaign_events,
    )
    started = time.monotonic()
    handoff = _Handoff()
    try:
        try:
            diff, _ = await asyncio.to_thread(
                _in_thread,
                settings.kafka_bootstrap,
                versions,
                draft,
                window,
                bounds,
                settings.attribution_clock_skew_s * 1000,
                settings.orders_backfill_limit_days,
                who,
                handoff,
            )
        except BaseException:
            if handoff.give_up():  # its thread never started: nobody else frees the slot
                _ONE_AT_A_TIME.release()
            raise
    except ReplayRefused as exc:
        too_large = "events" in str(exc)
        metrics.whatif.labels("too_large" if too_large else "timeout").inc()
        raise Problem(413 if too_large else 503, None, str(exc)) from None
    except (OSError, KafkaError) as exc:  # the broker away (KafkaConnectionError at start)
        metrics.whatif.labels("unavailable").inc()
        raise Problem(503, None, f"the topics cannot be read now: {exc}") from None
    finally:
        metrics.whatif_seconds.observe(time.monotonic() - started)
    metrics.whatif.labels("done").inc()
    return diff


def _in_thread(
    bootstrap: str,
    versions: Sequence[TermsVersion],
    draft: CampaignTerms,
    window: DateRange,
    bounds: ReplayBounds,
    clock_skew_ms: int,
    backfill_limit_days: int | None,
    who: str,
    handoff: _Handoff,
) -> tuple[WhatIfDiff, object]:
    """The replay, releasing the one-at-a-time lock when it ends: a request that goes
    away meanwhile leaves it running until then (within the time limit), still alone,
    and counted in ``who``'s turn. One that went away before this started ran nothing."""
    if not handoff.take():
        raise ReplayAbandoned
    started = time.monotonic()
    _TURNS.started(who)
    try:
        return asyncio.run(
            run_whatif(
                bootstrap,
                versions,
                draft,
                window,
                bounds,
                clock_skew_ms=clock_skew_ms,
                backfill_limit_days=backfill_limit_days,
            )
        )
    finally:
        _TURNS.ended(who, started, time.monotonic())
        _ONE_AT_A_TIME.release()
