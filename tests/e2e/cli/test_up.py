"""``afflux up`` as a user runs it: start, use, stop — and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from afflux.cli.processes import free_port, without_settings
from afflux.cli.topic_reader import read_events
from afflux.shared.events import AnyEvent, ClickRecorded
from afflux.shared.io.http import tls as oneshot
from afflux.shared.topics import CLICKS

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
    env = without_settings(os.environ)
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


def ignore_sigint() -> None:
    """What a shell without job control does before it runs ``afflux up &``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_up(
    env: dict[str, str], log: Path, *args: str, sigint_ignored: bool = False
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "afflux.cli", "up", *args],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=ignore_sigint if sigint_ignored else None,
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

    created = oneshot.post(
        f"{clicks}/v1/links",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "affiliate_id": "creator-01",
            "campaign_id": "acme-fashion",
            "destination_url": "https://shop.example.com/sneakers",
        },
    )
    assert created.status_code == 201, created.text
    redirect = oneshot.get(f"{clicks}/c/{created.json()['code']}")
    assert redirect.status_code == 302
    assert "afx_click" in parse_qs(urlsplit(redirect.headers["location"]).query)

    # The admin commands reach this stack (its broker and Redis on free ports) once the
    # shell file it printed is sourced; without it they went to 127.0.0.1:9092.
    env_file = data_dir / "up" / "env"
    assert f". {env_file}" in log.read_text()
    assert env_file.stat().st_mode & 0o777 == 0o600  # it holds the admin token
    bare = without_settings(env)
    applied = subprocess.run(
        ["bash", "-c", f'. "{env_file}" && "{sys.executable}" -m afflux.cli campaigns apply '
         "examples/campaigns.yaml"],
        cwd=REPO, env=bare, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stdout + applied.stderr
    # That shell would have a next afflux up take this stack's ports and token as given.
    again = subprocess.run(
        ["bash", "-c", f'. "{env_file}" && "{sys.executable}" -m afflux.cli up'],
        cwd=REPO, env=bare, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 2, again.stdout + again.stderr
    assert f"this shell sourced {env_file}" in again.stderr
    assert "acme-fashion: unchanged" in applied.stdout, applied.stdout

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert processes_mentioning(str(data_dir)) == []
    assert not env_file.exists()  # its ports are no longer this stack's


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


def test_up_restarts_a_service_killed_under_it_and_the_rest_carries_on(
    data_dir: Path, tmp_path: Path
) -> None:
    """kill -9 of the ledger under ``afflux up``: it stopped the whole stack (redirects and
    order intake with it); now the service is started again and the others never stop."""
    env = up_env(data_dir)
    log = tmp_path / "up.log"
    process = start_up(env, log)
    wait_for_text(log, "Press Ctrl-C to stop.", process, timeout_s=120)
    clicks = f"http://127.0.0.1:{env['AFFLUX_CLICKS_PORT']}"
    payouts = f"http://127.0.0.1:{env['AFFLUX_PAYOUTS_PORT']}"
    clicks_pids = set(_service_pids(data_dir, "afflux.clicks"))
    [ledger] = _service_pids(data_dir, "afflux.payouts")

    os.kill(ledger, signal.SIGKILL)
    wait_for_text(log, "afflux up: payouts restarted", process, timeout_s=180)

    assert process.poll() is None
    assert "restarting payouts" in log.read_text()
    assert oneshot.get(f"{payouts}/healthz").status_code == 200
    assert set(_service_pids(data_dir, "afflux.clicks")) == clicks_pids  # never stopped
    assert oneshot.get(f"{clicks}/healthz").status_code == 200
    stop_like_ctrl_c(process, data_dir)


def _service_pids(data_dir: Path, module: str) -> list[int]:
    """PIDs of this stack's ``python -m <module>`` processes."""
    wanted = f"-m\0{module}\0"
    return [
        pid
        for pid in processes_mentioning(str(data_dir))
        if any(wanted in line for line in _command_lines([pid]))
    ]


def create_link(clicks: str) -> str:
    created = oneshot.post(
        f"{clicks}/v1/links",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={
            "affiliate_id": "creator-02",
            "campaign_id": "acme-fashion",
            "destination_url": "https://shop.example.com/boots",
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["code"])


def follow(clicks: str, code: str) -> str:
    """The click id of one redirect through ``code``."""
    redirect = oneshot.get(f"{clicks}/c/{code}")
    assert redirect.status_code == 302, redirect.text
    return parse_qs(urlsplit(redirect.headers["location"]).query)["afx_click"][0]


def broker_of(log: Path) -> str:
    found = re.search(r"broker\s+(127\.0\.0\.1:\d+)\s+durable storage", log.read_text())
    assert found, log.read_text()
    return found.group(1)


def stop_like_ctrl_c(process: subprocess.Popen[bytes], data_dir: Path) -> None:
    """SIGINT, as Ctrl-C in a terminal sends it; every child goes with it."""
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0
    assert processes_mentioning(str(data_dir)) == []


# Two ups one after the other, each allowed 120 s to start: more than the suite's default.
@pytest.mark.timeout(600)
def test_a_second_up_on_the_same_data_dir_finds_the_first_runs_links_and_clicks(
    data_dir: Path, tmp_path: Path
) -> None:
    """Also: the default is durable storage (an object store runs), and Ctrl-C on it
    leaves no process behind."""
    env = up_env(data_dir)
    clicks = f"http://127.0.0.1:{env['AFFLUX_CLICKS_PORT']}"
    first_log = tmp_path / "up-1.log"
    first = start_up(env, first_log)
    wait_for_text(first_log, "Press Ctrl-C to stop.", first, timeout_s=120)
    assert re.search(r"broker\s+127\.0\.0\.1:\d+\s+durable storage", first_log.read_text())
    assert any("weed" in cmd for cmd in _command_lines(processes_mentioning(str(data_dir))))
    code = create_link(clicks)
    click_id = follow(clicks, code)
    stop_like_ctrl_c(first, data_dir)

    second_log = tmp_path / "up-2.log"
    second = start_up(env, second_log)
    try:
        wait_for_text(second_log, "Press Ctrl-C to stop.", second, timeout_s=120)
        follow(clicks, code)  # the link (Redis, AOF) is still there

        def has_first_click(events: list[AnyEvent]) -> bool:
            return any(isinstance(e, ClickRecorded) and e.click_id == click_id for e in events)

        events = asyncio.run(
            read_events(broker_of(second_log), CLICKS.name, until=has_first_click, timeout_s=30)
        )
        assert has_first_click(events), "the first run's click is not in the broker's log"
    finally:
        stop_like_ctrl_c(second, data_dir)


def test_up_on_memory_storage_started_with_sigint_ignored_stops_on_sigint(
    data_dir: Path, tmp_path: Path
) -> None:
    """Memory storage is an explicit choice that starts no object store; and ``up``
    started in the background (SIGINT ignored, as a shell's ``&`` leaves it) still
    stops on SIGINT."""
    probe = subprocess.run(
        [sys.executable, "-c", "import signal as s; print(s.getsignal(s.SIGINT) == s.SIG_IGN)"],
        preexec_fn=ignore_sigint,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"  # the inherited disposition under test

    log = tmp_path / "up.log"
    process = start_up(up_env(data_dir), log, "--storage", "memory", sigint_ignored=True)
    wait_for_text(log, "Press Ctrl-C to stop.", process, timeout_s=120)
    assert re.search(r"broker\s+127\.0\.0\.1:\d+\s+memory storage", log.read_text())
    assert not any("weed" in cmd for cmd in _command_lines(processes_mentioning(str(data_dir))))

    stop_like_ctrl_c(process, data_dir)
    assert "afflux: stopped" in log.read_text()


def _command_lines(pids: list[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            lines.append(
                (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace")
            )
        except OSError:
            continue
    return lines
