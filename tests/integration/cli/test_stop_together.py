"""Services of a stack shut down side by side: each gets its SIGTERM before any has
finished its shutdown, and one that ignores it is killed at its own deadline."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from afflux.cli.processes import Child, stop_together

pytestmark = pytest.mark.integration

# Writes "ready", then on SIGTERM notes the time it got it, takes ``pause`` seconds to
# shut down (as a service flushing) and notes when it ends.
_SLOW_SHUTDOWN = """
import signal, sys, time
marks, pause = sys.argv[1], float(sys.argv[2])
def on_term(*_):
    with open(marks, "a") as f:
        f.write(f"term {time.time()}\\n")
    time.sleep(pause)
    with open(marks, "a") as f:
        f.write(f"done {time.time()}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open(marks, "a").write("ready\\n")
while True:
    time.sleep(0.05)
"""
_DEAF = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "a").write("ready\\n")
while True:
    time.sleep(0.05)
"""


def _start(tmp_path: Path, name: str, script: str, *args: str, stop_s: float = 10.0) -> Child:
    marks = tmp_path / f"{name}.marks"
    child = Child(
        name,
        [sys.executable, "-c", script, str(marks), *args],
        tmp_path / f"{name}.log",
        stop_timeout_s=stop_s,
    ).start()
    child.wait_until(lambda: marks.exists() and "ready" in marks.read_text(), timeout_s=30)
    return child


def _marks(tmp_path: Path, name: str) -> dict[str, float]:
    lines = (tmp_path / f"{name}.marks").read_text().split()
    return {lines[i]: float(lines[i + 1]) for i in range(1, len(lines) - 1, 2)}


def test_every_child_gets_its_sigterm_before_the_first_has_shut_down(tmp_path: Path) -> None:
    children = [_start(tmp_path, f"svc{i}", _SLOW_SHUTDOWN, "1.0") for i in range(3)]
    stop_together(children)
    marks = [_marks(tmp_path, f"svc{i}") for i in range(3)]
    assert all(not c.alive() for c in children)
    assert max(m["term"] for m in marks) < min(m["done"] for m in marks)


def test_a_child_that_ignores_sigterm_is_killed_and_the_others_still_stop(tmp_path: Path) -> None:
    deaf = _start(tmp_path, "deaf", _DEAF, stop_s=0.5)
    polite = _start(tmp_path, "polite", _SLOW_SHUTDOWN, "0.1")
    started = time.monotonic()
    stop_together([deaf, polite])
    assert not deaf.alive()
    assert not polite.alive()
    assert deaf.process is not None
    assert deaf.process.returncode == -9
    assert polite.process is not None
    assert polite.process.returncode == 0
    assert "done" in _marks(tmp_path, "polite")
    assert time.monotonic() - started < 10, "the deaf child was waited for past its deadline"
