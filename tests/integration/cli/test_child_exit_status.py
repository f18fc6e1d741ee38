"""How a child process ended, as ``afflux up`` reports it when it restarts one: the exit
code or the signal, before its log's tail (which may be an old warning from its start
when a signal ended it without a word)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from afflux.cli.processes import Child

pytestmark = pytest.mark.integration


def _child(tmp_path: Path, code: str) -> Child:
    return Child("sleeper", [sys.executable, "-c", code], tmp_path / "sleeper.log").start()


def test_a_child_killed_by_a_signal_is_named_by_it(tmp_path: Path) -> None:
    child = _child(tmp_path, "import time; print('started', flush=True); time.sleep(60)")
    assert child.exit_status() == "still running"
    assert child.process is not None
    os.kill(child.process.pid, signal.SIGKILL)
    child.process.wait(timeout=10)

    assert child.exit_status() == "killed by SIGKILL"


def test_a_child_that_exits_is_named_by_its_code(tmp_path: Path) -> None:
    child = _child(tmp_path, "raise SystemExit(3)")
    assert child.process is not None
    child.process.wait(timeout=10)

    assert child.exit_status() == "exit code 3"
