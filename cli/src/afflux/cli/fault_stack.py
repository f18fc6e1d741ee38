"""A stack under test for faults: a steady load around each fault, then the exactness checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from afflux.cli.load import Endpoints, SteadyLoad
from afflux.cli.stack import Stack
from afflux.cli.traffic import Program, Tally, creator_ids
from afflux.cli.verify import StackCheck, check_stack


@dataclass
class FaultStack:
    stack: Stack
    programs: list[Program]
    creators: list[str] = field(default_factory=lambda: creator_ids(12))
    click_ids: list[str] = field(default_factory=list)
    accepted_orders: list[tuple[str, str]] = field(default_factory=list)
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
            time.sleep(2)
            fault()
            time.sleep(2)
        finally:
            tally = load.stop()
        assert load.failure is None, f"load failed: {load.failure!r}"
        self.click_ids += tally.click_ids
        self.accepted_orders += tally.accepted
        return tally

    def check(self) -> StackCheck:
        return check_stack(
            self.stack.kafka_bootstrap,
            self.stack.url("payouts"),
            sent_click_ids=self.click_ids,
            accepted_orders=self.accepted_orders,
        )
