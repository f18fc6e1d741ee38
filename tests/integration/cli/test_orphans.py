"""What a killed starter leaves running is stopped by the next session (``orphans.reap``):
real processes, a starter killed with SIGKILL, its child still running until the reap."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from afflux.cli import orphans

pytestmark = pytest.mark.integration

STARTER = """
import sys, time
from pathlib import Path
from afflux.cli.processes import Child
child = Child("sleeper", sys.argv[1:], Path(sys.argv[0]).with_name("sleeper.log")).start()
print(child.pid, flush=True)
time.sleep(600)
"""


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("AFFLUX_CHILDREN_DIR", str(tmp_path / "registry"))
    yield orphans.registry()
    for entry in orphans.registry().glob("*/*"):  # what a failed test left running
        pid, _, start = entry.name.partition("-")
        if orphans.started_at(int(pid)) == start:
            os.killpg(int(pid), signal.SIGKILL)


def _start(tmp_path: Path, *argv: str) -> tuple[subprocess.Popen[str], int]:
    """A starter process running ``argv`` as its Child; the starter and the child's PID."""
    script = tmp_path / "starter.py"
    script.write_text(STARTER)
    starter = subprocess.Popen(
        [sys.executable, str(script), *argv], stdout=subprocess.PIPE, text=True
    )
    assert starter.stdout is not None
    return starter, int(starter.stdout.readline())


def _gone_within(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while orphans.started_at(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill(starter: subprocess.Popen[str]) -> None:
    starter.kill()
    starter.wait()


def test_the_child_of_a_killed_starter_runs_on_until_the_next_session_stops_it(
    registry: Path, tmp_path: Path
) -> None:
    starter, child = _start(tmp_path, "sleep", "600")
    _kill(starter)
    assert orphans.started_at(child) is not None  # nothing else would ever stop it

    assert orphans.reap(grace_s=5) == [child]

    assert _gone_within(child, 5)
    assert list(registry.iterdir()) == []  # the dead starter is forgotten


def test_a_child_whose_starter_lives_is_left_alone(registry: Path, tmp_path: Path) -> None:
    starter, child = _start(tmp_path, "sleep", "600")
    try:
        assert orphans.reap(grace_s=1) == []
        assert orphans.started_at(child) is not None
    finally:
        _kill(starter)
        assert orphans.reap(grace_s=5) == [child]


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(
    registry: Path, tmp_path: Path
) -> None:
    starter, child = _start(
        tmp_path, "sh", "-c", "trap '' TERM; echo trapped; while :; do sleep 1; done"
    )
    # A SIGTERM that came before the trap was set would end the child at once.
    log = tmp_path / "sleeper.log"
    deadline = time.monotonic() + 10
    while "trapped" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the child never set its trap"
        time.sleep(0.02)
    _kill(starter)

    started = time.monotonic()
    assert orphans.reap(grace_s=1) == [child]

    assert _gone_within(child, 5)
    assert time.monotonic() - started >= 1  # SIGTERM first, SIGKILL only after the grace


def test_a_pid_now_held_by_another_process_is_never_signalled(
    registry: Path, tmp_path: Path
) -> None:
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        # A dead starter's entry naming ``other``'s PID with another start time: the
        # kernel gave that PID to a new process since.
        entry = registry / "999999999-1" / f"{other.pid}-1"
        entry.parent.mkdir(parents=True)
        entry.touch()

        assert orphans.reap(grace_s=1) == []

        assert other.poll() is None
        assert list(registry.iterdir()) == []
    finally:
        other.kill()
        other.wait()


def _afflux(registry: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """An afflux command run with ``registry`` as its children's registry."""
    return subprocess.run(
        [sys.executable, "-m", "afflux.cli", *args],
        env={**os.environ, "AFFLUX_CHILDREN_DIR": str(registry.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_command_that_starts_servers_first_stops_what_a_killed_command_left(
    registry: Path, tmp_path: Path
) -> None:
    starter, child = _start(tmp_path, "sleep", "600")
    _kill(starter)

    # An unknown benchmark: the command reaps, then refuses, starting nothing itself.
    command = _afflux(registry, "bench", "no-such-bench")

    assert command.returncode == 2
    assert _gone_within(child, 1)
    assert (
        f"stopped 1 process(es) an afflux command that was killed had left running "
        f"(PIDs {child})" in command.stderr
    )
    assert "no benchmark 'no-such-bench'" in command.stderr
    assert list(registry.iterdir()) == []


def test_asking_a_command_for_help_stops_nothing(registry: Path, tmp_path: Path) -> None:
    starter, child = _start(tmp_path, "sleep", "600")
    _kill(starter)

    command = _afflux(registry, "up", "--help")

    assert command.returncode == 0
    assert orphans.started_at(child) is not None
    assert orphans.reap(grace_s=5) == [child]
