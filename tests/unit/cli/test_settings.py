"""Settings refuse unsafe defaults in production and are read only when built."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from afflux.cli.settings import CliSettings
from afflux.cli.up import admin_token
from afflux.shared.settings import CommonSettings

pytestmark = pytest.mark.unit


def test_production_without_admin_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFLUX_ENV", "production")
    monkeypatch.delenv("AFFLUX_ADMIN_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="AFFLUX_ADMIN_TOKEN is required"):
        CommonSettings()


def test_production_with_admin_token_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFLUX_ENV", "production")
    token = "s3cret-token-of-at-least-32-bytes"
    monkeypatch.setenv("AFFLUX_ADMIN_TOKEN", token)
    assert CommonSettings().admin_token_value() == token


def test_development_generates_a_token_when_none_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFFLUX_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("AFFLUX_ENV", raising=False)
    token, generated = admin_token(CliSettings())
    assert generated
    assert len(token) >= 24


def test_configured_token_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFLUX_ADMIN_TOKEN", "chosen")
    assert admin_token(CliSettings()) == ("chosen", False)


def test_empty_bootstrap_means_start_the_embedded_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFFLUX_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("AFFLUX_ORDERS_PORT", "9102")
    settings = CliSettings()
    assert settings.kafka_bootstrap == ""
    assert settings.ports()["orders"] == 9102
