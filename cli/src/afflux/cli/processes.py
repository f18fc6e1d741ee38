"""Child processes the afflux command starts and must stop: broker, Redis, services."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StartFailed(RuntimeError):
    """A child process exited or never became healthy."""


# Ports handed out by this process: never handed out twice.
_HANDED_OUT: set[int] = set()
_PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def _below_ephemeral() -> range:
    """Ports under the kernel's ephemeral range: the kernel never gives one of them to
    an outgoing connection, which could otherwise take a chosen port in the moment
    before its server binds it (many clients connect while a stack starts)."""
    try:
        first = int(_PORT_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32_768  # Linux's default
    return range(_LOWEST, first) if first - _LOWEST >= 1_000 else range(0)


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
        if self.process is None or self.process.poll() is not None:
            return
        timeout_s = self.stop_timeout_s if timeout_s is None else timeout_s
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._exited()

    def _exited(self) -> None:
        if self.after_exit is not None:
            self.after_exit()
