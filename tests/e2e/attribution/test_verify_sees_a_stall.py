"""``afflux verify`` tells a stack whose attribution a broker stall changed.

The same stall that ``tests/e2e/faults`` survives exactly (the broker stopped,
SIGSTOP, longer than every grace, under load) is run on a stack whose worker keeps
its first decisions (``AFFLUX_ATTRIBUTION_REDECIDE=false``, a switch for tests only):
verify's checks must then name orders attributed differently from the event-time
oracle, and creators paid for orders they lost.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from afflux.cli.fault_stack import FaultStack
from afflux.cli.processes import free_port
from afflux.cli.processes import stall as stall_broker
from afflux.cli.stack import Stack, StackOptions
from afflux.cli.traffic import Program
from afflux.shared.campaign_file import load_campaign_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_TOKEN = "stall-admin-token"
CAMPAIGNS = Path(__file__).parents[3] / "examples" / "campaigns.yaml"


@pytest.fixture(scope="module")
def first_decisions_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    work = tmp_path_factory.mktemp("stall-stack")
    ports = {name: free_port() for name in ("clicks", "orders", "payouts", "attribution")}
    env = {
        "AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN,
        "AFFLUX_INSTANCE_ID": "1",
        "AFFLUX_ATTRIBUTION_REDECIDE": "false",
    }
    stack = Stack(StackOptions(work_dir=work, ports=ports, env=env))
    try:
        stack.start_infra()
        stack.apply_campaigns(CAMPAIGNS)
        stack.start_all()
        programs = [Program(e.terms) for e in load_campaign_file(CAMPAIGNS).campaigns]
        yield FaultStack(stack, programs, admin_token=ADMIN_TOKEN)
    finally:
        stack.stop()


def test_verify_reports_what_a_stall_changed_when_nothing_corrects_it(
    first_decisions_only: FaultStack,
) -> None:
    faults = first_decisions_only
    broker = next(c for c in faults.stack.infra if c.name == "broker")
    grace_s = max(p.terms.grace_seconds for p in faults.programs)

    def stall() -> None:
        stall_broker(broker.pid)
        try:
            time.sleep(grace_s + 10)  # the fault is a duration: well past every grace
        finally:
            os.kill(broker.pid, signal.SIGCONT)

    differences: list[str] = []
    for _ in range(3):  # a stall moves some orders, not a fixed number: stall again if none
        faults.under_load(stall)
        differences = faults.check().differences
        if differences:
            break
    assert any("the oracle says" in d and d.startswith("order ") for d in differences)
    assert any(": total " in d for d in differences), "\n".join(differences)
