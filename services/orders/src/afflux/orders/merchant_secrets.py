"""Merchant signing secrets: kept outside Kafka, never logged.

Sources, merged: a secrets file (``AFFLUX_MERCHANT_SECRETS_FILE``, YAML or JSON
``merchant_id: [secret, secret]``) and the ``AFFLUX_MERCHANT_SECRETS`` variable
(JSON of the same shape). At most two secrets per merchant are active, so a
secret can be rotated without downtime. In development, when neither source
names any merchant, every merchant that owns a campaign signs with
``dev-secret-<merchant_id>``; production refuses to start that way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from afflux.shared import yaml_mappings
from afflux.shared.secret_policy import ADVICE, secret_weakness

log = logging.getLogger(__name__)

MAX_ACTIVE_SECRETS = 2


class InvalidSecrets(ValueError):
    """The merchant secrets configuration is malformed (the message never holds a secret)."""


def dev_secret(merchant_id: str) -> str:
    """The documented development secret of a merchant (development mode only)."""
    return f"dev-secret-{merchant_id}"


def parse_secrets(raw: Any, source: str, *, production: bool = False) -> dict[str, tuple[str, ...]]:
    """Validate ``{merchant_id: [secret, ...]}`` (a single string is one secret); production
    also refuses development and short secrets."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidSecrets(f"{source}: expected a mapping of merchant id to secrets")
    parsed: dict[str, tuple[str, ...]] = {}
    for merchant, value in raw.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(merchant, str) or not merchant:
            raise InvalidSecrets(f"{source}: merchant ids must be non-empty strings")
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise InvalidSecrets(f"{source}: secrets of {merchant} must be non-empty strings")
        if not 1 <= len(values) <= MAX_ACTIVE_SECRETS:
            raise InvalidSecrets(
                f"{source}: {merchant} has {len(values)} secrets; give 1 or 2 (rotation)"
            )
        if production:
            _refuse_weak(values, merchant, source)
        parsed[merchant] = tuple(values)
    return parsed


def _refuse_weak(values: list[str], merchant: str, source: str) -> None:
    for position, value in enumerate(values, start=1):
        reason = secret_weakness(value)
        if reason is not None:
            raise InvalidSecrets(
                f"{source}: secret {position} of {merchant} {reason} "
                f"(AFFLUX_ENV=production); {ADVICE}"
            )


def load_secrets(
    file: Path | None, env_json: str | None, *, production: bool = False
) -> dict[str, tuple[str, ...]]:
    """Secrets from the file and the variable; the variable wins for a merchant in both."""
    merged: dict[str, tuple[str, ...]] = {}
    if file is not None:
        try:
            raw = yaml_mappings.load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidSecrets(
                f"AFFLUX_MERCHANT_SECRETS_FILE: cannot read {file}: {type(exc).__name__}"
            ) from None
        merged.update(
            parse_secrets(raw, f"AFFLUX_MERCHANT_SECRETS_FILE {file}", production=production)
        )
    if env_json:
        try:
            raw = yaml_mappings.load(env_json)  # JSON is YAML
        except yaml.YAMLError:
            raise InvalidSecrets("AFFLUX_MERCHANT_SECRETS: not valid JSON") from None
        merged.update(parse_secrets(raw, "AFFLUX_MERCHANT_SECRETS", production=production))
    return merged


class MerchantSecrets:
    """Look up a merchant's active secrets; ``None`` means unknown merchant."""

    def __init__(
        self,
        configured: Mapping[str, tuple[str, ...]],
        *,
        development: bool,
        campaign_merchants: Callable[[], set[str]] = set,
    ) -> None:
        if not configured and not development:
            raise InvalidSecrets(
                "no merchant secrets configured: set AFFLUX_MERCHANT_SECRETS_FILE or "
                "AFFLUX_MERCHANT_SECRETS (development secrets are refused in production)"
            )
        self._configured = dict(configured)
        self._dev = not configured
        self._campaign_merchants = campaign_merchants
        self._warned = False

    @property
    def uses_dev_secrets(self) -> bool:
        return self._dev

    def for_merchant(self, merchant_id: str) -> tuple[str, ...] | None:
        if not self._dev:
            return self._configured.get(merchant_id)
        if merchant_id not in self._campaign_merchants():
            return None
        if not self._warned:
            self._warned = True
            log.warning(
                "no merchant secrets configured: accepting development secrets "
                "(dev-secret-<merchant_id>); never use this in production"
            )
        return (dev_secret(merchant_id),)
