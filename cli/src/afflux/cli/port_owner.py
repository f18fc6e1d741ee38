"""Whether a process listens on a TCP port, from ``/proc`` (Linux).

A health check on a port proves only that *something* answers there. When another
stack took the port between the start-up check and the service's bind (two ``afflux
up`` at once), the service exits, but the other stack's service answered its /healthz
first and ``afflux up`` reported the stack up. The port must be held by the process
that was started.
"""

from __future__ import annotations

import os
from pathlib import Path

_LISTEN = "0A"  # the socket state in /proc/net/tcp


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[str] | None:
    """The inodes of the sockets listening on ``port`` (IPv4 and IPv6); None where the
    kernel does not say (no ``/proc``)."""
    found: set[str] = set()
    readable = False
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            listening = len(fields) > 9 and fields[3] == _LISTEN
            if listening and int(fields[1].rpartition(":")[2], 16) == port:
                found.add(fields[9])
    return found if readable else None


def socket_inodes(pid: int, proc: Path = Path("/proc")) -> set[str]:
    """The inodes of the sockets ``pid`` holds open (empty if it is gone)."""
    fds = proc / str(pid) / "fd"
    inodes: set[str] = set()
    try:
        names = os.listdir(fds)
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(fds / name)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def listens_on(pid: int, port: int, proc: Path = Path("/proc")) -> bool:
    """Whether ``pid`` holds a socket listening on ``port``; True where ``/proc`` cannot
    tell (the check is then the health answer alone, as before)."""
    listening = listening_inodes(port, proc)
    if listening is None:
        return True
    return bool(listening & socket_inodes(pid, proc))
