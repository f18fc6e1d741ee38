"""With AFFLUX_CLICKS_OPERATOR_PORT, the clicks process listens on a second port and
/metrics, /openapi.json and /docs answer only there: the public redirect port answers
them 404 like any unknown path (docs/clicks.md, "Operator port")."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from afflux.cli.processes import Child, free_port
from afflux.shared.io.http import tls as oneshot

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ports(infra: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    work: Path = tmp_path_factory.mktemp("clicks-operator-port")
    public, operator = free_port(), free_port()
    env = {
        "AFFLUX_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "AFFLUX_REDIS_URL": infra.redis_url.rsplit("/", 1)[0] + "/5",
        "AFFLUX_DATA_DIR": str(work / "data"),
        "AFFLUX_CLICKS_PORT": str(public),
        "AFFLUX_CLICKS_OPERATOR_PORT": str(operator),
        "AFFLUX_CLICKS_IP_HASH_SECRET": "operator-port-test-secret",
    }
    argv = [sys.executable, "-m", "afflux.clicks"]
    child = Child("clicks", argv, work / "clicks.log", env=env).start()
    urls = f"http://127.0.0.1:{public}", f"http://127.0.0.1:{operator}"

    def answering() -> bool:
        try:
            return oneshot.get(f"{urls[1]}/metrics", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        child.wait_until(answering, timeout_s=60)
        yield urls
    finally:
        child.stop()


@pytest.mark.parametrize("path", ["/metrics", "/openapi.json", "/docs"])
def test_operator_paths_answer_only_on_the_operator_port(ports: tuple[str, str], path: str) -> None:
    public, operator = ports
    hidden = oneshot.get(public + path, timeout=5)
    assert hidden.status_code == 404
    assert hidden.json() == {"detail": [{"field": None, "reason": "Not Found"}]}
    assert oneshot.get(operator + path, timeout=5).status_code == 200


def test_the_public_port_still_redirects_and_answers_health(ports: tuple[str, str]) -> None:
    public, _ = ports
    assert oneshot.get(public + "/healthz", timeout=5).status_code in (200, 503)
    unknown = oneshot.get(public + "/c/no-such-code", timeout=5)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("text/html")
