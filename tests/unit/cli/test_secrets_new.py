"""``afflux secrets new`` prints fresh secrets the production checks accept."""

from __future__ import annotations

import json
import os

import pytest

from afflux.cli.main import main
from afflux.clicks.settings import ClicksSettings
from afflux.orders.merchant_secrets import load_secrets
from afflux.shared.secret_policy import MIN_SECRET_BYTES

pytestmark = pytest.mark.unit


def _printed(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, str]:
    assert main(["secrets", "new", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    pairs = dict(line.split("=", 1) for line in lines)
    assert len(pairs) == len(lines)
    return pairs


def test_printed_secrets_start_a_production_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = _printed(capsys)
    for name in list(os.environ):
        if name.startswith("AFFLUX_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AFFLUX_ENV", "production")
    monkeypatch.setenv("AFFLUX_ADMIN_TOKEN", printed["AFFLUX_ADMIN_TOKEN"])
    monkeypatch.setenv("AFFLUX_CLICKS_IP_HASH_SECRET", printed["AFFLUX_CLICKS_IP_HASH_SECRET"])
    # not a secret, but production needs it too
    monkeypatch.setenv("AFFLUX_CLICKS_PUBLIC_URL", "https://go.example.com")
    settings = ClicksSettings()
    assert settings.admin_token_value() == printed["AFFLUX_ADMIN_TOKEN"]
    merchants = load_secrets(None, printed["AFFLUX_MERCHANT_SECRETS"].strip("'"), production=True)
    assert list(merchants) == ["MERCHANT_ID"]


def test_each_given_merchant_gets_its_own_secret(capsys: pytest.CaptureFixture[str]) -> None:
    printed = _printed(capsys, "--merchant", "merchant-acme", "--merchant", "merchant-globex")
    mapping = json.loads(printed["AFFLUX_MERCHANT_SECRETS"].strip("'"))
    assert list(mapping) == ["merchant-acme", "merchant-globex"]
    acme, globex = mapping["merchant-acme"][0], mapping["merchant-globex"][0]
    assert acme != globex
    assert load_secrets(None, json.dumps(mapping), production=True)


def test_every_value_is_fresh_and_carries_32_random_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = _printed(capsys), _printed(capsys)
    for name in ("AFFLUX_ADMIN_TOKEN", "AFFLUX_CLICKS_IP_HASH_SECRET"):
        # token_urlsafe(32): 32 random bytes as 43 URL-safe base64 characters
        assert len(first[name]) >= 43 > MIN_SECRET_BYTES
        assert first[name] != second[name]
    assert first["AFFLUX_ADMIN_TOKEN"] != first["AFFLUX_CLICKS_IP_HASH_SECRET"]
    assert first["AFFLUX_MERCHANT_SECRETS"] != second["AFFLUX_MERCHANT_SECRETS"]
