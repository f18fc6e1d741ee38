"""Where merchant secrets come from, and the development fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from afflux.orders.merchant_secrets import InvalidSecrets, MerchantSecrets, load_secrets

pytestmark = pytest.mark.unit


def test_file_and_variable_merge_and_the_variable_wins(tmp_path: Path) -> None:
    file = tmp_path / "secrets.yaml"
    file.write_text("merchant-a: [a1, a2]\nmerchant-b: b1\n")
    loaded = load_secrets(file, '{"merchant-b": ["b2"], "merchant-c": ["c1"]}')
    assert loaded == {"merchant-a": ("a1", "a2"), "merchant-b": ("b2",), "merchant-c": ("c1",)}


@pytest.mark.parametrize(
    "text",
    [
        '{"m": ["topsecret1", "topsecret2", "topsecret3"]}',
        '{"m": []}',
        '{"m": ["topsecret", ""]}',
        '["topsecret"]',
        '{"m": topsecret',
    ],
)
def test_malformed_secrets_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(InvalidSecrets) as raised:
        load_secrets(None, text)
    assert "topsecret" not in str(raised.value)


def test_configured_merchants_only() -> None:
    secrets = MerchantSecrets({"m": ("s",)}, development=True, campaign_merchants=lambda: {"x"})
    assert secrets.for_merchant("m") == ("s",)
    assert secrets.for_merchant("x") is None


def test_development_falls_back_to_dev_secrets_for_campaign_merchants_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = MerchantSecrets({}, development=True, campaign_merchants=lambda: {"merchant-acme"})
    with caplog.at_level(logging.WARNING):
        assert secrets.for_merchant("merchant-acme") == ("dev-secret-merchant-acme",)
        assert secrets.for_merchant("merchant-acme") == ("dev-secret-merchant-acme",)
    assert secrets.for_merchant("stranger") is None
    warnings = [r for r in caplog.records if "development secrets" in r.getMessage()]
    assert len(warnings) == 1
    assert "dev-secret-merchant-acme" not in caplog.text


def test_production_refuses_to_run_without_configured_secrets() -> None:
    with pytest.raises(InvalidSecrets, match="production"):
        MerchantSecrets({}, development=False)
