"""With AFFLUX_PAYOUTS_OPERATOR_PORT, the payouts process (whose port serves the portal's
browsers) listens on a second port and /metrics, /openapi.json and /docs answer only
there; the portal port answers them 404 like any unknown path (docs/portal.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_stack import running_payouts

from afflux.cli.processes import free_port
from afflux.shared.io.http import tls as oneshot

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    work: Path = tmp_path_factory.mktemp("payouts-operator-port")
    operator = free_port()
    env = {"AFFLUX_PAYOUTS_OPERATOR_PORT": str(operator), "AFFLUX_WEBHOOKS_ENABLED": "false"}
    with running_payouts(work, "operator-port-shop", env) as stack:
        yield stack.url, f"http://127.0.0.1:{operator}"


@pytest.mark.parametrize("path", ["/metrics", "/openapi.json", "/docs"])
def test_operator_paths_answer_only_on_the_operator_port(ports: tuple[str, str], path: str) -> None:
    public, operator = ports
    hidden = oneshot.get(public + path, timeout=5)
    assert hidden.status_code == 404
    assert hidden.json() == {"detail": [{"field": None, "reason": "Not Found"}]}
    assert oneshot.get(operator + path, timeout=5).status_code == 200


def test_the_portal_port_still_serves_the_login_form(ports: tuple[str, str]) -> None:
    public, _ = ports
    assert oneshot.get(public + "/login", timeout=5).status_code == 200
    assert oneshot.get(public + "/healthz", timeout=5).status_code == 200
