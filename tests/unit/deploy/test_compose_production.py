"""What compose.yaml promises for production: secrets only as files, input topics kept for
replay, a Redis with a password that never evicts, limits and log rotation everywhere, and
a required public URL for tracking links. Read from the file, no Docker needed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from afflux.clicks.settings import ClicksSettings
from afflux.orders.settings import OrdersSettings
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.settings import CommonSettings
from afflux.shared.topics import ALL_TOPICS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
AFFLUX = sorted(n for n, s in SERVICES.items() if s.get("image") == "afflux:latest")


@dataclass(frozen=True)
class Secrets:
    service: str
    files: dict[str, str]  # variable -> secret name, mounted at /run/secrets/<name>


NEEDS = [
    # the topic job builds CommonSettings, which production checks for the admin token;
    # `campaigns apply` run in it takes the orders service's terms lock in Redis
    Secrets(
        "topics",
        {
            "AFFLUX_ADMIN_TOKEN_FILE": "admin_token",
            "AFFLUX_REDIS_PASSWORD_FILE": "redis_password",
        },
    ),
    # clicks: IP-hash key and Redis
    Secrets(
        "clicks",
        {
            "AFFLUX_ADMIN_TOKEN_FILE": "admin_token",
            "AFFLUX_CLICKS_IP_HASH_SECRET_FILE": "clicks_ip_hash_secret",
            "AFFLUX_REDIS_PASSWORD_FILE": "redis_password",
        },
    ),
    # orders: merchant signing secrets and Redis
    Secrets(
        "orders",
        {
            "AFFLUX_ADMIN_TOKEN_FILE": "admin_token",
            "AFFLUX_MERCHANT_SECRETS_FILE": "merchant_secrets",
            "AFFLUX_REDIS_PASSWORD_FILE": "redis_password",
        },
    ),
    # payouts: the ledger is in Redis
    Secrets(
        "payouts",
        {"AFFLUX_ADMIN_TOKEN_FILE": "admin_token", "AFFLUX_REDIS_PASSWORD_FILE": "redis_password"},
    ),
    # attribution keeps its state in Faust's stores, not in Redis: no Redis password
    Secrets("attribution", {"AFFLUX_ADMIN_TOKEN_FILE": "admin_token"}),
]


def _secret_variables() -> set[str]:
    """Every AFFLUX_* variable whose setting is a secret (a SecretStr field)."""
    names: set[str] = set()
    for settings in (CommonSettings, ClicksSettings, OrdersSettings, PayoutsSettings):
        for field, info in settings.model_fields.items():
            if "SecretStr" in str(info.annotation) or info.annotation is SecretStr:
                names.add(f"AFFLUX_{field.upper()}")
    return names


def test_the_table_covers_every_afflux_service() -> None:
    assert sorted(n.service for n in NEEDS) == AFFLUX


@pytest.mark.parametrize("needs", NEEDS, ids=lambda n: n.service)
def test_secrets_reach_each_service_as_files(needs: Secrets) -> None:
    service = SERVICES[needs.service]
    env = service["environment"]
    for variable, secret in needs.files.items():
        assert env[variable] == f"/run/secrets/{secret}", variable
    assert sorted(service["secrets"]) == sorted(set(needs.files.values()))


def test_the_secret_settings_are_what_the_table_names() -> None:
    assert _secret_variables() == {
        "AFFLUX_ADMIN_TOKEN",
        "AFFLUX_CLICKS_IP_HASH_SECRET",
        "AFFLUX_MERCHANT_SECRETS",
        "AFFLUX_REDIS_PASSWORD",
    }


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_secret_is_a_plain_variable(name: str) -> None:
    env = SERVICES[name].get("environment") or {}
    plain = sorted(k for k in env if k in _secret_variables() or k == "GF_SECURITY_ADMIN_PASSWORD")
    assert plain == []
    assert not any("PASSWORD" in str(v) or "SECRET" in str(v) for v in env.values())


def test_every_secret_is_a_file_on_the_host() -> None:
    used = {s for svc in SERVICES.values() for s in svc.get("secrets", [])}
    declared = COMPOSE["secrets"]
    assert used == set(declared)
    for name, secret in declared.items():
        assert secret["file"].startswith("${AFFLUX_SECRETS_DIR:-./secrets}/"), name


def test_grafana_reads_its_admin_password_from_a_file() -> None:
    grafana = SERVICES["grafana"]
    env = grafana["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert grafana["secrets"] == ["grafana_admin_password"]


def test_the_topic_job_keeps_input_topics_forever_by_default() -> None:
    env = SERVICES["topics"]["environment"]
    assert env["AFFLUX_INPUT_RETENTION_MS"] == "${AFFLUX_INPUT_RETENTION_MS:--1}"
    assert {t.name for t in ALL_TOPICS if t.input} == {
        "clicks",
        "orders",
        "refunds",
        "campaigns",
        "content",
        "reviews",
    }


def test_kafka_does_not_create_topics_behind_the_topic_job() -> None:
    assert SERVICES["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def _redis_script() -> str:
    return " ".join(SERVICES["redis"]["command"])


@pytest.mark.parametrize(
    "part",
    [
        "--maxmemory ${AFFLUX_REDIS_MAXMEMORY:-2gb}",  # a configurable ceiling
        "--maxmemory-policy noeviction",  # never drop idempotency keys or the ledger
        "--appendonly yes",  # AOF kept
        "--appendfsync everysec",
        "requirepass $$(cat /run/secrets/redis_password)",  # from the secret file, on stdin
        "exec docker-entrypoint.sh redis-server -",  # the image's user switch, config on stdin
    ],
)
def test_redis_command(part: str) -> None:
    assert part in _redis_script()
    assert SERVICES["redis"]["secrets"] == ["redis_password"]


def test_redis_healthcheck_authenticates() -> None:
    test = SERVICES["redis"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert 'REDISCLI_AUTH="$$(cat /run/secrets/redis_password)" redis-cli ping' in test[1]
    assert "grep -q PONG" in test[1]  # a NOAUTH answer is unhealthy


@pytest.mark.parametrize("name", ["clicks", "orders", "payouts"])
def test_services_reach_redis_with_the_password(name: str) -> None:
    env = SERVICES[name]["environment"]
    assert env["AFFLUX_REDIS_URL"].startswith("redis://redis:6379/")
    assert "@" not in env["AFFLUX_REDIS_URL"]
    assert env["AFFLUX_REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password"


def _memory_bytes(text: str) -> float:
    units = {"k": 1e3, "m": 1e6, "g": 1e9, "kb": 1e3, "mb": 1e6, "gb": 1e9}
    digits = text.rstrip("bkmgBKMG")
    return float(digits) * units.get(text[len(digits) :].lower(), 1)


def test_redis_memory_limit_leaves_room_above_maxmemory() -> None:
    limit = SERVICES["redis"]["deploy"]["resources"]["limits"]["memory"]
    assert limit == "${AFFLUX_REDIS_MEMORY_LIMIT:-3g}"
    assert _memory_bytes("3g") >= 1.5 * _memory_bytes("2gb")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_cpu_and_memory_limits(name: str) -> None:
    limits = SERVICES[name]["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0
    assert str(limits["memory"])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_rotates_its_logs(name: str) -> None:
    logging = SERVICES[name]["logging"]
    assert logging["driver"] == "json-file"
    assert logging["options"]["max-size"]
    assert int(logging["options"]["max-file"]) >= 2


def test_the_public_url_of_tracking_links_is_required() -> None:
    url = SERVICES["clicks"]["environment"]["AFFLUX_CLICKS_PUBLIC_URL"]
    assert url.startswith("${AFFLUX_CLICKS_PUBLIC_URL:?")


def test_the_orders_service_asks_the_payouts_service_for_an_orders_postings() -> None:
    env = SERVICES["orders"]["environment"]
    port = SERVICES["payouts"]["environment"]["AFFLUX_PAYOUTS_PORT"]
    assert env["AFFLUX_PAYOUTS_URL"] == f"http://payouts:{port}"
