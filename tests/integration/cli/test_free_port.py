"""Free ports for the servers a stack starts: below the ephemeral range, never twice."""

from __future__ import annotations

import socket

import pytest

from afflux.cli import processes
from afflux.cli.embedded import cluster_port
from afflux.cli.processes import free_port

pytestmark = pytest.mark.integration


def test_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    below = processes._below_ephemeral()
    assert all(p in below for p in ports), ports
    for port in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_a_server_holds_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = free_port()
    monkeypatch.setattr(processes, "_HANDED_OUT", set())  # forget having handed it out
    # The held port is the only candidate: another one (from the kernel) comes instead.
    monkeypatch.setattr(processes, "_below_ephemeral", lambda: range(taken, taken + 1))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", taken))
        held.listen()
        assert processes.port_in_use(taken)
        assert free_port() != taken


def test_without_a_readable_range_the_linux_default_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AFFLUX_PORT_SLICE", raising=False)
    monkeypatch.setattr(processes, "_PORT_RANGE_FILE", processes.Path("/nonexistent/range"))
    assert processes._below_ephemeral() == range(10_000, 16_000)
    assert processes.cluster_node_ports() == range(16_000, 22_768)


def test_free_ports_never_meet_a_cluster_node_or_its_bus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cluster node's bus listens at its port + 10000: neither may be a free port."""
    monkeypatch.delenv("AFFLUX_PORT_SLICE", raising=False)
    free = processes._below_ephemeral()
    nodes = processes.cluster_node_ports()
    buses = range(nodes.start + processes.CLUSTER_BUS_OFFSET, nodes.stop + 10_000)
    assert len(free) >= 5_000
    assert len(nodes) >= 5_000
    assert not set(free) & set(nodes)
    assert not set(free) & set(buses)
    assert not set(nodes) & set(buses)
    assert buses.stop <= 32_768  # under the ephemeral range, as the others


@pytest.mark.parametrize("count", [2, 3, 8])
def test_side_by_side_pickers_draw_from_parts_that_never_meet(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.delenv("AFFLUX_PORT_SLICE", raising=False)
    whole_free, whole_nodes = processes._below_ephemeral(), processes.cluster_node_ports()
    parts = []
    for index in range(count):
        monkeypatch.setenv("AFFLUX_PORT_SLICE", f"{index}/{count}")
        parts.append((processes._below_ephemeral(), processes.cluster_node_ports()))
    for free, nodes in parts:
        assert len(free) >= len(whole_free) // count - 1
        assert set(free) <= set(whole_free)
        assert set(nodes) <= set(whole_nodes)
    for a in range(count):
        for b in range(a + 1, count):
            assert not set(parts[a][0]) & set(parts[b][0])
            assert not set(parts[a][1]) & set(parts[b][1])
    monkeypatch.setenv("AFFLUX_PORT_SLICE", f"1/{count}")
    picked = [free_port() for _ in range(20)]
    assert all(p in parts[1][0] for p in picked), picked


@pytest.mark.parametrize("setting", ["", "3/3", "x/2", "1/", "/2"])
def test_a_missing_or_bad_slice_draws_from_the_whole_range(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.delenv("AFFLUX_PORT_SLICE", raising=False)
    whole = processes._below_ephemeral()
    monkeypatch.setenv("AFFLUX_PORT_SLICE", setting)
    assert processes._below_ephemeral() == whole


def test_a_cluster_node_port_and_its_bus_are_both_free() -> None:
    port = cluster_port()
    assert port in processes.cluster_node_ports()
    assert not processes.port_in_use(port)
    assert not processes.port_in_use(port + 10_000)
