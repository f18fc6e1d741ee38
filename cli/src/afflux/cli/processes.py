"""Child processes the afflux command starts and must stop: broker, Redis, services."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from afflux.cli import orphans


class StartFailed(RuntimeError):
    """A child process exited or never became healthy."""


# Ports handed out by this process: never handed out twice.
_HANDED_OUT: set[int] = set()
_PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000
# Ports are drawn under the kernel's ephemeral range, in two parts that never meet:
# ``free_port`` below this one, Redis Cluster nodes from it on, whose cluster buses
# listen at +10000 (Redis cannot move them), above both. A server started on a free
# port never finds a node's bus on it, nor the reverse (CI once saw a worker's port
# taken by the bus of a cluster node another test had just started).
_CLUSTER_LOWEST = 16_000
CLUSTER_BUS_OFFSET = 10_000


def _ephemeral_start() -> int:
    try:
        return int(_PORT_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _below_ephemeral() -> range:
    """The ports ``free_port`` draws from, under the kernel's ephemeral range: the kernel
    never gives one of them to an outgoing connection, which could otherwise take a
    chosen port in the moment before its server binds it (many clients connect while a
    stack starts)."""
    top = min(_ephemeral_start(), _CLUSTER_LOWEST)
    return _own_slice(range(_LOWEST, top)) if top - _LOWEST >= 1_000 else range(0)


def cluster_node_ports() -> range:
    """The ports Redis Cluster nodes draw from: each with its bus (+10000) still under the
    ephemeral range, and both above what ``free_port`` hands out."""
    top = max(_CLUSTER_LOWEST, _ephemeral_start() - CLUSTER_BUS_OFFSET)
    return _own_slice(range(_CLUSTER_LOWEST, top))


def _own_slice(ports: range) -> range:
    """The ``i``-th of ``n`` equal parts of ``ports`` when ``AFFLUX_PORT_SLICE`` is
    ``i/n``, else all of them. Processes that pick ports side by side (the test run's
    workers set it) then never pick the same one: a port is free when picked but is
    bound only once its server starts, seconds later for a whole stack, and another
    picker could take it meanwhile (CI saw a service find its port taken)."""
    index, _, count = os.environ.get("AFFLUX_PORT_SLICE", "").partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        return ports
    size = len(ports) // int(count)
    start = ports.start + int(index) * size
    return range(start, start + size)


# How processes on one machine share it (their port slice, their children's registry):
# kept when a caller's own afflux settings are left out of a child's environment.
SHARED_SETTINGS = ("AFFLUX_PORT_SLICE", "AFFLUX_CHILDREN_DIR")


def without_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without its ``AFFLUX_`` settings but those in ``SHARED_SETTINGS``:
    a command started from a configured shell (or a test worker) must not take that
    configuration, but must keep to the worker's ports (a stack drawing from every
    worker's ports took one another worker had picked for its own stack)."""
    return {k: v for k, v in environ.items() if not k.startswith("AFFLUX_") or k in SHARED_SETTINGS}


def reserve_ports(ports: Iterable[int]) -> None:
    """Ports chosen elsewhere (settings, another picker) that ``free_port`` must not hand
    out: free now but bound only once their servers start, a broker or Redis started
    first could otherwise take one and its service exit with "address already in use"."""
    _HANDED_OUT.update(ports)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now, chosen at random under the ephemeral range (so two
    test workers rarely pick the same one, and no outgoing connection takes it)."""
    candidates = _below_ephemeral()
    rng = random.SystemRandom()
    for _ in range(200 if candidates else 0):
        port = rng.choice(candidates)
        if port not in _HANDED_OUT and not port_in_use(port, host):
            _HANDED_OUT.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port = int(sock.getsockname()[1])
    _HANDED_OUT.add(port)
    return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def tcp_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@dataclass
class Child:
    """One started process with its log file; stopped by PID, its own group only."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    stop_timeout_s: float = 10.0
    after_exit: Callable[[], None] | None = None  # tidies what the process leaves behind
    process: subprocess.Popen[bytes] | None = None
    registered: Path | None = None  # where ``orphans`` finds it should this process die

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            list(self.argv),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        log_file.close()
        self.registered = orphans.register(self.process.pid)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise StartFailed(f"{self.name} exited during start-up:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.1)
        raise StartFailed(f"{self.name} was not healthy after {timeout_s:.0f}s:\n{self.log_tail()}")

    def exit_status(self) -> str:
        """How the process ended: its exit code, or the signal that killed it."""
        code = None if self.process is None else self.process.poll()
        if code is None:
            return "still running"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"killed by {name}"
        return f"exit code {code}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def kill(self) -> None:
        """SIGKILL, for fault tests."""
        if self.process is None:
            return
        if self.alive():
            self.process.kill()
            self.process.wait()
        self._exited()

    def stop(self, timeout_s: float | None = None) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s`` (default ``stop_timeout_s``); only
        this child and its own group."""
        if self.terminate():
            self.reap(time.monotonic() + (self.stop_timeout_s if timeout_s is None else timeout_s))

    def terminate(self) -> bool:
        """SIGTERM to this child's group; False when it had exited already."""
        if self.process is None or self.process.poll() is not None:
            orphans.unregister(self.registered)  # it exited on its own: nothing to reap
            self.registered = None
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        return True

    def reap(self, deadline: float) -> None:
        """Wait for the exit a ``terminate`` asked for; SIGKILL at ``deadline`` (monotonic)."""
        if self.process is None:
            return
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._exited()

    def _exited(self) -> None:
        orphans.unregister(self.registered)
        self.registered = None
        if self.after_exit is not None:
            self.after_exit()


def stop_together(children: Sequence[Child]) -> None:
    """SIGTERM to every child at once, then each is waited for up to its own
    ``stop_timeout_s``: children that do not depend on one another shut down side by
    side instead of one after another."""
    started = time.monotonic()
    for child in [c for c in children if c.terminate()]:
        child.reap(started + child.stop_timeout_s)


def stall(pid: int, timeout_s: float = 10.0) -> None:
    """SIGSTOP ``pid`` and return once every thread of it is stopped.

    ``kill`` returns before a thread running on another core has taken the signal: a
    request sent at once could still be read and answered by a broker thread in that
    moment (a produce acknowledged "during" a stall, on a loaded machine). So the
    threads' states are read back from ``/proc`` until each says stopped (``T``);
    TimeoutError if they do not within ``timeout_s`` (the process is left stopped)."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout_s
    while not _all_threads_stopped(pid):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"process {pid} not stopped {timeout_s}s after SIGSTOP")
        time.sleep(0.005)


def _all_threads_stopped(pid: int) -> bool:
    tasks = Path(f"/proc/{pid}/task")
    try:
        states = [_state((tasks / tid / "stat").read_text()) for tid in os.listdir(tasks)]
    except FileNotFoundError:  # a thread ended between the listing and the read
        return False
    return bool(states) and all(state in ("T", "t") for state in states)


def _state(stat: str) -> str:
    # "pid (comm) S ...": the command may hold spaces and parentheses; the state follows
    # the last closing parenthesis.
    return stat.rpartition(")")[2].split()[0]
