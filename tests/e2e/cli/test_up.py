"""``afflux up`` as a user runs it: start, use, stop — and nothing left behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from afflux.cli.processes import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
TOKEN = "up-test-token"


def processes_mentioning(marker: str) -> list[int]:
    """PIDs whose environment or command line contains ``marker`` (our unique data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            found.append(int(entry.name))
    return found


def up_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFLUX_")}
    env.update(
        AFFLUX_DATA_DIR=str(data_dir),
        AFFLUX_ADMIN_TOKEN=TOKEN,
        AFFLUX_CLICKS_PORT=str(free_port()),
        AFFLUX_ORDERS_PORT=str(free_port()),
        AFFLUX_PAYOUTS_PORT=str(free_port()),
        AFFLUX_ATTRIBUTION_PORT=str(free_port()),
    )
    env.update(extra)
    return env


def start_up(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "afflux.cli", "up"],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_for_text(log: Path, text: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not printed; output:\n{log.read_text(errors='replace')}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "afflux-up-data"
    yield path
    for pid in processes_mentioning(str(path)):  # never leave our own children behind
        os.kill(pid, signal.SIGKILL)


def test_up_serves_a_link_and_sigterm_leaves_no_process_behind(
    data_dir: Path, tmp_path: Path
) -> None:
    env = up_env(data_dir)
    log = tmp_path / "up.log"
    process = start_up(env, log)
    wait_for_text(log, "Press Ctrl-C to stop.", process, timeout_s=120)
    clicks = f"http://127.0.0.1:{env['AFFLUX_CLICKS_PORT']}"

    created = httpx.post(
        f"{clicks}/v1/links",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "affiliate_id": "creator-01",
            "campaign_id": "acme-fashion",
            "destination_url": "https://shop.example.com/sneakers",
        },
    )
    assert created.status_code == 201, created.text
    redirect = httpx.get(f"{clicks}/c/{created.json()['code']}")
    assert redirect.status_code == 302
    assert "afx_click" in parse_qs(urlsplit(redirect.headers["location"]).query)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert processes_mentioning(str(data_dir)) == []


def test_up_refuses_a_taken_port_naming_it(data_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = up_env(data_dir, AFFLUX_ORDERS_PORT=str(taken))
        log = tmp_path / "up.log"
        process = start_up(env, log)
        assert process.wait(timeout=60) != 0
    assert f"orders port {taken}" in log.read_text()
    assert processes_mentioning(str(data_dir)) == []


def test_up_reports_the_child_that_failed_and_stops_the_rest(
    data_dir: Path, tmp_path: Path
) -> None:
    closed_port = free_port()  # nothing listens here: every Redis user must fail to start
    env = up_env(data_dir, AFFLUX_REDIS_URL=f"redis://127.0.0.1:{closed_port}/0")
    log = tmp_path / "up.log"
    process = start_up(env, log)
    assert process.wait(timeout=120) != 0
    output = log.read_text()
    assert "clicks exited during start-up" in output
    assert f"127.0.0.1:{closed_port}" in output
    assert processes_mentioning(str(data_dir)) == []
