"""A stack under test for faults: a steady load around each fault, then the exactness checks."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from afflux.cli.creator_traffic import CreatorTally
from afflux.cli.load import Endpoints, SteadyLoad
from afflux.cli.stack import Stack
from afflux.cli.traffic import Program, Tally, creator_ids
from afflux.cli.verify import StackCheck, check_stack
from afflux.shared.io.http import tls as oneshot

LOAD_BEFORE_AND_AFTER = 12  # requests answered around each fault
# What a fresh process counts once it has done real work on its input.
WORK_COUNTERS = {
    "attribution": "afflux_attribution_events_total",
    "payouts": "afflux_ledger_batches_total",
}


def _sent(tally: Tally) -> int:
    return tally.clicks + tally.orders + tally.refunds


def _sample_sum(text: str, name: str) -> float:
    pattern = rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$"
    return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE))


@dataclass
class FaultStack:
    stack: Stack
    programs: list[Program]
    creators: list[str] = field(default_factory=lambda: creator_ids(12))
    click_ids: list[str] = field(default_factory=list)
    accepted_orders: list[tuple[str, str]] = field(default_factory=list)
    # What the loads sent of creator traffic, every run so far: a fault may cut one
    # run's journeys short (a request it fails), not every run's.
    creator_sent: CreatorTally = field(default_factory=CreatorTally)
    runs: int = 0
    admin_token: str = ""

    @property
    def endpoints(self) -> Endpoints:
        s = self.stack
        return Endpoints(s.url("clicks"), s.url("orders"), s.url("payouts"), self.admin_token)

    def under_load(self, fault: Callable[[], None], *, visitors_per_s: float = 6.0) -> Tally:
        """Run ``fault`` while seeded visitors keep arriving; return what the load sent."""
        self.runs += 1
        load = SteadyLoad(
            self.endpoints,
            [Program(p.terms) for p in self.programs],
            self.creators,
            seed=self.runs,
            visitors_per_s=visitors_per_s,
            run_id=f"f{self.runs}",
        ).start()
        try:
            # By progress, not by the clock: the fault starts once the load is flowing,
            # and the load goes on after it until more requests have been answered.
            self._answered(load, at_least=LOAD_BEFORE_AND_AFTER)
            fault()
            self._answered(load, at_least=_sent(load.tally) + LOAD_BEFORE_AND_AFTER)
        finally:
            tally = load.stop()
        assert load.failure is None, f"load failed: {load.failure!r}"
        self.click_ids += tally.click_ids
        self.accepted_orders += tally.accepted
        self.creator_sent.add(tally.creator)
        return tally

    def _answered(self, load: SteadyLoad, *, at_least: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while _sent(load.tally) < at_least:
            if load.failure is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"the load answered {_sent(load.tally)} of {at_least} requests"
                    f" within {timeout_s:.0f}s (failure: {load.failure!r})"
                )
            time.sleep(0.05)

    def restart_and_wait_for_work(self, service: str, timeout_s: float = 60) -> None:
        """kill -9 ``service``, start it again, and return once the new process has
        processed input (its work counter moved from zero): the next fault then hits a
        service that is really running, not one still starting."""
        self.stack.kill_service(service)
        self.stack.start_service(service)
        self.wait_for_work(service, self.stack.url(service), timeout_s)

    def wait_for_work(self, service: str, base_url: str, timeout_s: float = 60) -> None:
        """Until the process serving ``base_url`` has processed input (its work counter
        moved from zero)."""
        counter = WORK_COUNTERS[service]
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                text = oneshot.get(f"{base_url}/metrics", timeout=2).text
                if _sample_sum(text, counter) > 0:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{service} did no work within {timeout_s:.0f}s of starting")
            time.sleep(0.1)

    def check(self) -> StackCheck:
        return check_stack(
            self.stack.kafka_bootstrap,
            self.stack.url("payouts"),
            admin_token=self.admin_token,
            sent_click_ids=self.click_ids,
            accepted_orders=self.accepted_orders,
        )
