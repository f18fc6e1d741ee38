"""Production refuses to start with a missing, short or development secret; development
keeps starting with none. Every refusal is one line naming the variable, never the value."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from afflux.clicks.settings import ClicksSettings
from afflux.orders.merchant_secrets import InvalidSecrets, load_secrets
from afflux.orders.settings import OrdersSettings
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.secret_policy import MIN_SECRET_BYTES, settings_error
from afflux.shared.settings import CommonSettings

pytestmark = pytest.mark.unit

STRONG = "k" * MIN_SECRET_BYTES
OTHER_STRONG = "q" * MIN_SECRET_BYTES


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AFFLUX_"):
            monkeypatch.delenv(name)


@dataclass(frozen=True)
class Case:
    name: str
    settings: type[CommonSettings]
    env: dict[str, str]
    refusal: str | None  # None: accepted
    secret: str = ""  # a value that must never appear in the message


PROD = {"AFFLUX_ENV": "production"}
PUBLIC_URL = "https://go.example.com"
CLICKS_OK = {"AFFLUX_CLICKS_IP_HASH_SECRET": OTHER_STRONG, "AFFLUX_CLICKS_PUBLIC_URL": PUBLIC_URL}

SETTINGS_CASES = [
    # the admin token is required at all
    Case("admin token missing", PayoutsSettings, PROD, "AFFLUX_ADMIN_TOKEN is required"),
    # an empty variable is the same as none
    Case(
        "admin token empty",
        PayoutsSettings,
        {**PROD, "AFFLUX_ADMIN_TOKEN": ""},
        "AFFLUX_ADMIN_TOKEN is required",
    ),
    # the probe's finding: a one-character token
    Case(
        "admin token one character",
        OrdersSettings,
        {**PROD, "AFFLUX_ADMIN_TOKEN": "#"},
        "AFFLUX_ADMIN_TOKEN is too short: 1 bytes",
        secret="#",
    ),
    # one byte below the boundary
    Case(
        "admin token 31 bytes",
        PayoutsSettings,
        {**PROD, "AFFLUX_ADMIN_TOKEN": "t" * 31},
        "AFFLUX_ADMIN_TOKEN is too short: 31 bytes, at least 32 needed",
        secret="t" * 31,
    ),
    # exactly at the boundary
    Case("admin token 32 bytes", PayoutsSettings, {**PROD, "AFFLUX_ADMIN_TOKEN": STRONG}, None),
    # bytes, not characters: 11 three-byte characters are 33 bytes
    Case(
        "admin token 33 utf-8 bytes",
        PayoutsSettings,
        {**PROD, "AFFLUX_ADMIN_TOKEN": "€" * 11},
        None,
    ),
    # long enough but of the documented development shape
    Case(
        "admin token of the development pattern",
        PayoutsSettings,
        {**PROD, "AFFLUX_ADMIN_TOKEN": "dev-secret-merchant-acme-fashion-shop"},
        "AFFLUX_ADMIN_TOKEN is a development secret",
        secret="dev-secret-merchant-acme-fashion-shop",
    ),
    # every service shares the admin token rule
    Case(
        "clicks admin token short",
        ClicksSettings,
        {**PROD, **CLICKS_OK, "AFFLUX_ADMIN_TOKEN": "sh0rt!"},
        "AFFLUX_ADMIN_TOKEN is too short",
        secret="sh0rt!",
    ),
    # the IP-hash key must be set, else hashes change on every restart
    Case(
        "ip hash key missing",
        ClicksSettings,
        {**PROD, "AFFLUX_ADMIN_TOKEN": STRONG},
        "AFFLUX_CLICKS_IP_HASH_SECRET is required",
    ),
    # a short key makes client IPs guessable from their hashes
    Case(
        "ip hash key one character",
        ClicksSettings,
        {**PROD, **CLICKS_OK, "AFFLUX_ADMIN_TOKEN": STRONG, "AFFLUX_CLICKS_IP_HASH_SECRET": "%"},
        "AFFLUX_CLICKS_IP_HASH_SECRET is too short: 1 bytes",
        secret="%",
    ),
    # the development pattern is refused for the key too
    Case(
        "ip hash key of the development pattern",
        ClicksSettings,
        {
            **PROD,
            "AFFLUX_ADMIN_TOKEN": STRONG,
            "AFFLUX_CLICKS_IP_HASH_SECRET": "dev-secret-clicks-and-some-more-bytes",
        },
        "AFFLUX_CLICKS_IP_HASH_SECRET is a development secret",
    ),
    # strong values pass
    Case(
        "clicks strong", ClicksSettings, {**PROD, "AFFLUX_ADMIN_TOKEN": STRONG, **CLICKS_OK}, None
    ),
    # development keeps working with nothing configured
    Case("development without secrets", ClicksSettings, {}, None),
    # development accepts short hand-picked values
    Case(
        "development with short secrets",
        ClicksSettings,
        {"AFFLUX_ADMIN_TOKEN": "t", "AFFLUX_CLICKS_IP_HASH_SECRET": "s"},
        None,
    ),
]


@pytest.mark.parametrize("case", SETTINGS_CASES, ids=lambda c: c.name)
def test_settings_refuse_weak_production_secrets(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    if case.refusal is None:
        case.settings()
        return
    with pytest.raises(ValidationError) as raised:
        case.settings()
    line = settings_error(raised.value)
    assert case.refusal in line
    assert "\n" not in line
    assert "afflux secrets new" in line
    if case.secret:
        assert case.secret not in line


@dataclass(frozen=True)
class UrlCase:
    name: str
    url: str | None  # None: unset
    refusal: str | None  # None: accepted


URL_CASES = [
    # unset: the development default would make every link point at the server itself
    UrlCase("unset", None, "AFFLUX_CLICKS_PUBLIC_URL is required when AFFLUX_ENV=production"),
    # set but empty is unset
    UrlCase("empty", "", "AFFLUX_CLICKS_PUBLIC_URL is required"),
    # the development default, set explicitly
    UrlCase("127.0.0.1", "http://127.0.0.1:8001", "AFFLUX_CLICKS_PUBLIC_URL points at 127.0.0.1"),
    # anywhere in 127.0.0.0/8 is loopback
    UrlCase("127.1.2.3", "https://127.1.2.3", "points at 127.1.2.3, which only this machine"),
    # the name of loopback, in any case and with a trailing dot
    UrlCase("localhost", "http://LocalHost.:8001/", "points at localhost"),
    # RFC 6761 names under .localhost are loopback too
    UrlCase("sub.localhost", "https://go.localhost", "points at go.localhost"),
    # IPv6 loopback
    UrlCase("::1", "http://[::1]:8001", "points at ::1"),
    # the bind-everything address is no address others can use
    UrlCase("0.0.0.0", "http://0.0.0.0:8001", "points at 0.0.0.0"),
    # not a web URL
    UrlCase("no scheme", "go.example.com", "must be an http(s) URL with a host"),
    UrlCase("ftp", "ftp://go.example.com", "must be an http(s) URL with a host"),
    # a public name passes (whether it resolves is the operator's to know)
    UrlCase("public name", PUBLIC_URL, None),
    # a private address is reachable by others on that network: allowed
    UrlCase("private address", "http://10.0.0.5:8001", None),
    # a name that merely starts with localhost is a real name
    UrlCase("localhost-like name", "https://localhost.example.com", None),
]


@pytest.mark.parametrize("case", URL_CASES, ids=lambda c: c.name)
def test_production_refuses_a_missing_or_loopback_public_url(
    case: UrlCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**PROD, "AFFLUX_ADMIN_TOKEN": STRONG, "AFFLUX_CLICKS_IP_HASH_SECRET": OTHER_STRONG}
    if case.url is not None:
        env["AFFLUX_CLICKS_PUBLIC_URL"] = case.url
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if case.refusal is None:
        ClicksSettings()
        return
    with pytest.raises(ValidationError) as raised:
        ClicksSettings()
    line = settings_error(raised.value)
    assert case.refusal in line
    assert "\n" not in line


def test_development_keeps_the_loopback_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ClicksSettings().clicks_public_url == "http://127.0.0.1:8001"
    monkeypatch.setenv("AFFLUX_CLICKS_PUBLIC_URL", "http://localhost:9000/")
    assert ClicksSettings().clicks_public_url == "http://localhost:9000"


@dataclass(frozen=True)
class SecretsCase:
    name: str
    env_json: str
    refusal: str | None
    secret: str = ""


MERCHANT_CASES = [
    # the probe's finding: the documented development secret set explicitly
    SecretsCase(
        "development secret of the merchant",
        '{"merchant-acme": ["dev-secret-merchant-acme"]}',
        "AFFLUX_MERCHANT_SECRETS: secret 1 of merchant-acme is a development secret",
        secret="dev-secret-merchant-acme",
    ),
    # the probe's finding: a one-character secret
    SecretsCase(
        "one character",
        '{"merchant-acme": "s"}',
        "AFFLUX_MERCHANT_SECRETS: secret 1 of merchant-acme is too short: 1 bytes",
    ),
    # the rotation's next secret is checked as well as the current one
    SecretsCase(
        "short next secret",
        f'{{"merchant-acme": ["{STRONG}", "next-one"]}}',
        "secret 2 of merchant-acme is too short: 8 bytes",
        secret="next-one",
    ),
    # one byte below the boundary
    SecretsCase("31 bytes", f'{{"m": ["{"s" * 31}"]}}', "secret 1 of m is too short: 31 bytes"),
    # at the boundary, two strong secrets
    SecretsCase("strong pair", f'{{"m": ["{STRONG}", "{OTHER_STRONG}"]}}', None),
]


@pytest.mark.parametrize("case", MERCHANT_CASES, ids=lambda c: c.name)
def test_production_refuses_weak_merchant_secrets(case: SecretsCase) -> None:
    if case.refusal is None:
        assert load_secrets(None, case.env_json, production=True)
        return
    with pytest.raises(InvalidSecrets) as raised:
        load_secrets(None, case.env_json, production=True)
    message = str(raised.value)
    assert case.refusal in message
    assert "\n" not in message
    if case.secret:
        assert case.secret not in message


def test_weak_merchant_secret_in_a_file_names_the_file_variable(tmp_path: Path) -> None:
    file = tmp_path / "secrets.yaml"
    file.write_text("merchant-acme: [dev-secret-merchant-acme]\n")
    with pytest.raises(InvalidSecrets, match=r"AFFLUX_MERCHANT_SECRETS_FILE .*merchant-acme"):
        load_secrets(file, None, production=True)


def test_development_accepts_short_merchant_secrets() -> None:
    assert load_secrets(None, '{"m": ["s"]}') == {"m": ("s",)}


def test_a_settings_error_is_one_line_per_problem_without_the_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AFFLUX_ENV", "production")
    monkeypatch.setenv("AFFLUX_ADMIN_TOKEN", "hunter2")
    monkeypatch.setenv("AFFLUX_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValidationError) as raised:
        PayoutsSettings()
    line = settings_error(raised.value)
    assert line.startswith("AFFLUX_TOPIC_PARTITIONS: Input should be greater than or equal to 1")
    assert "\n" not in line
    assert "hunter2" not in line
