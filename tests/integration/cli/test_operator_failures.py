"""An admin command that cannot do its work says so in one line and exits 2: the broker or
Redis unreachable, a file missing, a bad option. Operators reach for these commands in an
incident (the divergence alerts name them): a traceback, or a minute of silence before a
bare TimeoutError, helped nobody."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from afflux.cli.processes import free_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["ledger", "rebuild"], "cannot reach the Kafka broker at 127.0.0.1:"),
        (["ledger", "compact", "--dry-run"], "cannot reach the Kafka broker at 127.0.0.1:"),
        (["attribution", "rebuild"], "cannot reach the broker"),
        (["topics", "create"], "cannot reach the broker"),
        (["verify", "--campaigns", "/no/such/campaigns.yaml"], "invalid campaign file"),
        (["up", "--partitions", "0"], "0 partitions: give 1 or more"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_command_that_cannot_work_says_why_in_one_line(
    command: list[str], says: str, tmp_path: Path
) -> None:
    nobody = free_port()  # nothing listens there
    env = {
        **os.environ,
        "AFFLUX_KAFKA_BOOTSTRAP": f"127.0.0.1:{nobody}",
        "AFFLUX_REDIS_URL": f"redis://127.0.0.1:{nobody}/0",
        "AFFLUX_DATA_DIR": str(tmp_path),
    }
    env.pop("AFFLUX_DEBUG", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "afflux.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.monotonic() - started

    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert took < 30, f"{took:.0f} s before saying so"
