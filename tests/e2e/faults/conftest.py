"""One stack for the fault tests: broker behind a gate, Redis with AOF, example campaigns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from afflux.cli.fault_stack import FaultStack
from afflux.cli.processes import free_port
from afflux.cli.stack import Stack, StackOptions
from afflux.cli.traffic import Program
from afflux.shared.campaign_file import load_campaign_file

ADMIN_TOKEN = "fault-admin-token"
CAMPAIGNS = Path(__file__).parents[3] / "examples" / "campaigns.yaml"


@pytest.fixture(scope="package")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    work = tmp_path_factory.mktemp("fault-stack")
    ports = {name: free_port() for name in ("clicks", "orders", "payouts", "attribution")}
    stack = Stack(
        StackOptions(
            work_dir=work,
            ports=ports,
            gate_broker=True,
            redis_aof=True,
            env={"AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN, "AFFLUX_INSTANCE_ID": "1"},
        )
    )
    try:
        stack.start_infra()
        stack.apply_campaigns(CAMPAIGNS)
        stack.start_all()
        programs = [Program(e.terms) for e in load_campaign_file(CAMPAIGNS).campaigns]
        yield FaultStack(stack, programs, admin_token=ADMIN_TOKEN)
    finally:
        stack.stop()
