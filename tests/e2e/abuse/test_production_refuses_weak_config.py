"""A service process started in production with a weak secret exits 2 at once, saying which
variable and why on one line, and never prints the secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from afflux.cli.processes import free_port, without_settings

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
    files: dict[str, str] = field(default_factory=dict)  # name -> content; env's {dir}


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
    # production tracking links must point somewhere public: unset is refused
    Case(
        "clicks without a public URL",
        "afflux.clicks",
        {"AFFLUX_ADMIN_TOKEN": STRONG, "AFFLUX_CLICKS_IP_HASH_SECRET": OTHER},
        "AFFLUX_CLICKS_PUBLIC_URL is required when AFFLUX_ENV=production",
    ),
    # and so is the loopback address, which opens for no one else
    Case(
        "clicks with a loopback public URL",
        "afflux.clicks",
        {
            "AFFLUX_ADMIN_TOKEN": STRONG,
            "AFFLUX_CLICKS_IP_HASH_SECRET": OTHER,
            "AFFLUX_CLICKS_PUBLIC_URL": "http://127.0.0.1:8001",
        },
        "AFFLUX_CLICKS_PUBLIC_URL points at 127.0.0.1",
    ),
    # a secret file that is not there names the variable and the path
    Case(
        "orders with a missing admin token file",
        "afflux.orders",
        {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/absent", "AFFLUX_MERCHANT_SECRETS": "{}"},
        "AFFLUX_ADMIN_TOKEN_FILE: cannot read",
    ),
    # a weak secret in a file is refused like one in the environment
    Case(
        "payouts with a short admin token in a file",
        "afflux.payouts",
        {"AFFLUX_ADMIN_TOKEN_FILE": "{dir}/admin_token"},
        "AFFLUX_ADMIN_TOKEN is too short: 7 bytes",
        secret="hunter2",
        files={"admin_token": "hunter2\n"},
    ),
    # control: secrets as files, as compose gives them, pass and stop at the broker instead
    Case(
        "orders with strong secrets in files",
        "afflux.orders",
        {
            "AFFLUX_ADMIN_TOKEN_FILE": "{dir}/admin_token",
            "AFFLUX_MERCHANT_SECRETS_FILE": "{dir}/merchant_secrets.json",
        },
        f"Kafka broker at {UNREACHABLE}",
        refused=False,
        files={"admin_token": STRONG + "\n", "merchant_secrets.json": json.dumps({"m": [OTHER]})},
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
def test_production_process_with_weak_config_exits_2_saying_why(case: Case, tmp_path: Path) -> None:
    for name, content in case.files.items():
        (tmp_path / name).write_text(content)
    env = without_settings(os.environ)
    env.update(
        AFFLUX_ENV="production",
        AFFLUX_KAFKA_BOOTSTRAP=UNREACHABLE,
        AFFLUX_REDIS_URL="redis://127.0.0.1:1/0",
        AFFLUX_ORDERS_PORT=str(free_port()),
        AFFLUX_CLICKS_PORT=str(free_port()),
        AFFLUX_PAYOUTS_PORT=str(free_port()),
        **{k: v.replace("{dir}", str(tmp_path)) for k, v in case.env.items()},
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
