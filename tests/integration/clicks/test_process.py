"""``python -m afflux.clicks`` as a process: refuses to start without its dependencies,
stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from afflux.cli.processes import free_port
from afflux.shared.io.http import tls as oneshot

pytestmark = pytest.mark.integration


def clicks_env(infra: Any, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AFFLUX_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "AFFLUX_REDIS_URL": infra.redis_url.rsplit("/", 1)[0] + "/1",
        "AFFLUX_CLICKS_PORT": str(free_port()),
        "AFFLUX_DATA_DIR": str(tmp_path),
        "AFFLUX_ADMIN_TOKEN": "t",
        **extra,
    }


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"AFFLUX_KAFKA_BOOTSTRAP": "127.0.0.1:{port}"}, "Kafka broker at 127.0.0.1:{port}"),
        ({"AFFLUX_REDIS_URL": "redis://127.0.0.1:{port}/1"}, "Redis at redis://127.0.0.1:{port}/1"),
    ],
    ids=["broker", "redis"],
)
def test_unreachable_dependency_exits_2_with_one_line_naming_it(
    infra: Any, tmp_path: Path, override: dict[str, str], named: str
) -> None:
    port = free_port()
    env = clicks_env(infra, tmp_path, **{k: v.format(port=port) for k, v in override.items()})
    done = subprocess.run(
        [sys.executable, "-m", "afflux.clicks"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert named.format(port=port) in lines[0]


def test_sigterm_stops_the_service_with_exit_0(infra: Any, tmp_path: Path) -> None:
    env = clicks_env(infra, tmp_path)
    url = f"http://127.0.0.1:{env['AFFLUX_CLICKS_PORT']}"
    process = subprocess.Popen(
        [sys.executable, "-m", "afflux.clicks"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while time.monotonic() < deadline and process.poll() is None and not healthy:
            try:
                healthy = oneshot.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.2)
        assert healthy
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
