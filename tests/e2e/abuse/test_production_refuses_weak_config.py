"""A service process started in production with a weak secret exits 2 at once, saying which
variable and why on one line, and never prints the secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from afflux.cli.processes import free_port

pytestmark = [pytest.mark.e2e]

STRONG = "Q" * 43
OTHER = "W" * 43
UNREACHABLE = "127.0.0.1:1"  # a config that passes would stop here instead, saying so


@dataclass(frozen=True)
class Case:
    name: str
    module: str
    env: dict[str, str]
    says: str
    secret: str = ""
    refused: bool = True  # False: the control, stopped later by the broker check


CASES = [
    # the probe's finding: the documented development secret set explicitly
    Case(
        "orders with the development merchant secret",
        "afflux.orders",
        {
            "AFFLUX_ADMIN_TOKEN": STRONG,
            "AFFLUX_MERCHANT_SECRETS": json.dumps({"merchant-acme": "dev-secret-merchant-acme"}),
        },
        "AFFLUX_MERCHANT_SECRETS: secret 1 of merchant-acme is a development secret",
        secret="dev-secret-merchant-acme",
    ),
    # the probe's finding: a one-character merchant secret
    Case(
        "orders with a one-character merchant secret",
        "afflux.orders",
        {"AFFLUX_ADMIN_TOKEN": STRONG, "AFFLUX_MERCHANT_SECRETS": '{"merchant-acme": "#"}'},
        "secret 1 of merchant-acme is too short: 1 bytes",
        secret="#",
    ),
    # the probe's finding: a one-character admin token
    Case(
        "orders with a one-character admin token",
        "afflux.orders",
        {"AFFLUX_ADMIN_TOKEN": "#", "AFFLUX_MERCHANT_SECRETS": json.dumps({"m": STRONG})},
        "AFFLUX_ADMIN_TOKEN is too short: 1 bytes",
        secret="#",
    ),
    # the IP-hash key must be given
    Case(
        "clicks without an IP-hash key",
        "afflux.clicks",
        {"AFFLUX_ADMIN_TOKEN": STRONG},
        "AFFLUX_CLICKS_IP_HASH_SECRET is required",
    ),
    # and long enough
    Case(
        "clicks with a short IP-hash key",
        "afflux.clicks",
        {"AFFLUX_ADMIN_TOKEN": STRONG, "AFFLUX_CLICKS_IP_HASH_SECRET": "hunter2"},
        "AFFLUX_CLICKS_IP_HASH_SECRET is too short: 7 bytes",
        secret="hunter2",
    ),
    # every service checks the admin token
    Case(
        "payouts with a 31-byte admin token",
        "afflux.payouts",
        {"AFFLUX_ADMIN_TOKEN": "p" * 31},
        "AFFLUX_ADMIN_TOKEN is too short: 31 bytes",
        secret="p" * 31,
    ),
    # control: strong secrets pass the checks and stop at the unreachable broker instead
    Case(
        "orders with strong secrets",
        "afflux.orders",
        {"AFFLUX_ADMIN_TOKEN": STRONG, "AFFLUX_MERCHANT_SECRETS": json.dumps({"m": OTHER})},
        f"Kafka broker at {UNREACHABLE}",
        refused=False,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_production_process_with_weak_config_exits_2_saying_why(case: Case) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFFLUX_")}
    env.update(
        AFFLUX_ENV="production",
        AFFLUX_KAFKA_BOOTSTRAP=UNREACHABLE,
        AFFLUX_REDIS_URL="redis://127.0.0.1:1/0",
        AFFLUX_ORDERS_PORT=str(free_port()),
        AFFLUX_CLICKS_PORT=str(free_port()),
        AFFLUX_PAYOUTS_PORT=str(free_port()),
        **case.env,
    )
    done = subprocess.run(
        [sys.executable, "-m", case.module],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails the test instead of stalling it
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert case.says in lines[-1]
    if case.refused:
        assert len(lines) == 1, done.stderr
    if case.secret:
        assert case.secret not in done.stderr
