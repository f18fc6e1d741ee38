"""A stall returns only once every thread of the process is stopped, not when the
signal was sent: a busy thread on another core could still answer a request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from afflux.cli.processes import stall

pytestmark = pytest.mark.unit

BUSY_THREADS = (
    "import threading, time\n"
    "def spin():\n"
    "    while True:\n"
    "        pass\n"
    "for _ in range(6):\n"
    "    threading.Thread(target=spin, daemon=True).start()\n"
    "time.sleep(60)\n"
)


def _states(pid: int) -> list[str]:
    tasks = Path(f"/proc/{pid}/task")
    return [
        (tasks / tid / "stat").read_text().rpartition(")")[2].split()[0]
        for tid in os.listdir(tasks)
    ]


def test_every_thread_of_a_busy_process_is_stopped_when_stall_returns() -> None:
    child = subprocess.Popen([sys.executable, "-c", BUSY_THREADS])
    try:
        deadline = time.monotonic() + 10
        while len(_states(child.pid)) < 7:  # the main thread and six spinning
            assert time.monotonic() < deadline, "the threads never started"
            time.sleep(0.01)

        stall(child.pid)

        assert set(_states(child.pid)) <= {"T", "t"}
        os.kill(child.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while "R" not in _states(child.pid):  # running again
            assert time.monotonic() < deadline, "the process never resumed"
            time.sleep(0.01)
    finally:
        os.kill(child.pid, signal.SIGCONT)
        child.kill()
        child.wait()


def test_a_process_that_is_gone_is_not_waited_for_as_stopped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()

    with pytest.raises(ProcessLookupError):
        stall(child.pid)
