"""Children left running by an afflux process that died without stopping them.

Every ``Child`` starts in a session of its own, so that a Ctrl-C meant for the command
reaches it only through the command's orderly stop. That also means nothing stops it
when its starter is killed outright: SIGKILL, or SIGTERM to a test run, whose fixtures'
finalizers then never run, left brokers, Redis servers and services running. So each
start is registered under its starter, and ``reap`` (every test session, and every
afflux command that starts servers, calls it as it begins) stops the registered
children of starters that are gone. A process is named by
its PID and its start time: a PID the kernel has given to another process since is
never signalled, and a child whose starter is alive is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

GRACE_S = 5.0  # between SIGTERM and SIGKILL


def registry() -> Path:
    """Where starters register their children: one directory per starter."""
    base = os.environ.get("AFFLUX_CHILDREN_DIR") or tempfile.gettempdir()
    return Path(base) / f"afflux-children-{os.getuid()}"


def started_at(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), None when it is gone or a
    zombie (exited, not yet waited for)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the name, which may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _name(pid: int) -> str | None:
    start = started_at(pid)
    return None if start is None else f"{pid}-{start}"


def _alive(name: str) -> bool:
    pid, _, start = name.partition("-")
    return pid.isdigit() and started_at(int(pid)) == start


def register(pid: int) -> Path | None:
    """Note that this process started ``pid`` (its own process group); None when it
    cannot be noted (the child exited already, or the registry is not writable)."""
    owner, child = _name(os.getpid()), _name(pid)
    if owner is None or child is None:
        return None
    path = registry() / owner / child
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        return None
    return path


def unregister(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def reap(grace_s: float = GRACE_S) -> list[int]:
    """Stop every registered child whose starter is gone (SIGTERM to its group, SIGKILL
    to what is left after ``grace_s``) and forget such starters; the PIDs stopped."""
    try:
        owners = [d for d in registry().iterdir() if d.is_dir()]
    except OSError:
        return []
    stopped: list[str] = []
    gone: list[Path] = []
    for owner in owners:
        if _alive(owner.name):
            continue
        gone.append(owner)
        for child in _entries(owner):
            if _alive(child.name):
                _signal(child.name, signal.SIGTERM)
                stopped.append(child.name)
    deadline = time.monotonic() + grace_s
    while any(_alive(c) for c in stopped) and time.monotonic() < deadline:
        time.sleep(0.05)
    for name in stopped:
        if _alive(name):
            _signal(name, signal.SIGKILL)
    for owner in gone:
        for path in _entries(owner):
            unregister(path)
        with contextlib.suppress(OSError):
            owner.rmdir()
    return [int(c.partition("-")[0]) for c in stopped]


def _entries(owner: Path) -> list[Path]:
    """A starter's registered children; none when another reaper (a second command or
    test session starting at the same moment) has already forgotten the starter."""
    try:
        return list(owner.iterdir())
    except OSError:
        return []


def reap_and_say(command: str) -> None:
    """``reap`` before ``command`` starts its servers: what a killed earlier command left
    would hold its ports and data directory. Says on stderr what it stopped."""
    left = reap()
    if left:
        pids = ", ".join(str(pid) for pid in sorted(left))
        print(
            f"afflux {command}: stopped {len(left)} process(es) an afflux command that was "
            f"killed had left running (PIDs {pids})",
            file=sys.stderr,
        )


def _signal(name: str, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(int(name.partition("-")[0]), signum)
