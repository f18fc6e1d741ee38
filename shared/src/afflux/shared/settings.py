"""Typed settings from ``AFFLUX_*`` environment variables, built once at start-up.

Each service extends ``CommonSettings`` with its own fields; nothing here is
read at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from afflux.shared.core.proxies import Network, parse_networks
from afflux.shared.redis_url import with_password
from afflux.shared.secret_policy import require_strong
from afflux.shared.setting_files import FileVariables
from afflux.shared.topics import INFINITE_RETENTION_MS


class CommonSettings(BaseSettings):
    """Settings every afflux process reads."""

    model_config = SettingsConfigDict(env_prefix="AFFLUX_", extra="ignore")

    env: Literal["development", "production"] = "development"
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    # repr=False: it carries redis_password once the settings are built.
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL", repr=False)
    redis_password: SecretStr | None = Field(
        None, description="Redis password (requirepass), added to redis_url"
    )
    admin_token: SecretStr | None = Field(None, description="bearer token for admin endpoints")
    topic_partitions: int = Field(4, ge=1, le=1024, description="partitions of data topics")
    input_retention_ms: int = Field(
        INFINITE_RETENTION_MS,
        description="retention.ms of the input topics the topic job creates; -1 keeps them "
        "forever, so replaying them rebuilds every state",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    host: str = Field("127.0.0.1", description="address the HTTP server binds")
    trusted_proxies: str = Field(
        "",
        description="comma-separated addresses/CIDRs of the proxies whose X-Forwarded-For "
        "names the client (per-address limits); empty: the TCP peer is the client",
    )
    data_dir: Path = Field(Path(".afflux"), description="local state (spools, worker data)")
    # HTTP limits (docs/reliability.md, "HTTP limits"); afflux.shared.io.http_limits reads them.
    http_max_header_bytes: int = Field(
        16_384, ge=1_024, description="request line plus headers; more is answered 431"
    )
    http_max_body_bytes: int = Field(
        1_048_576, ge=1_024, description="request body; more is answered 413"
    )
    http_header_timeout_seconds: float = Field(
        10.0, gt=0, description="time to send the request line and headers; then 408"
    )
    http_body_timeout_seconds: float = Field(
        30.0, gt=0, description="time to send the body after the headers; then 408"
    )
    http_keep_alive_seconds: int = Field(
        5, ge=1, description="an idle connection between requests is closed after this"
    )
    http_max_connections: int = Field(
        1_000, ge=1, description="open connections per process; one more is answered 503"
    )
    http_max_connections_per_address: int = Field(
        100,
        ge=1,
        description="open connections per client address (IPv6: per /64) and process, a"
        " trusted proxy's not counted; one more is answered 503",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # AFFLUX_<NAME>_FILE (afflux.shared.setting_files); both set is refused, so the order
        # matters only for an empty variable, which does not hide its file.
        files = FileVariables(settings_cls)
        return init_settings, files, env_settings, dotenv_settings, file_secret_settings

    @field_validator("input_retention_ms")
    @classmethod
    def _retention_forever_or_positive(cls, value: int) -> int:
        if value != INFINITE_RETENTION_MS and value < 1:
            raise ValueError("must be -1 (keep forever) or a positive number of milliseconds")
        return value

    @model_validator(mode="after")
    def _redis_url_carries_the_password(self) -> Self:
        if self.redis_password is not None and self.redis_url:
            self.redis_url = with_password(self.redis_url, self.redis_password.get_secret_value())
        return self

    @model_validator(mode="after")
    def _production_needs_strong_admin_token(self) -> Self:
        if self.env == "production":
            require_strong("AFFLUX_ADMIN_TOKEN", self.admin_token_value())
        return self

    @model_validator(mode="after")
    def _trusted_proxies_parse(self) -> Self:
        self.trusted_proxy_networks()  # fail at start, not on the first request
        return self

    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        """``AFFLUX_TRUSTED_PROXIES`` as networks (afflux.shared.io.http.client_address)."""
        try:
            return parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ValueError(f"AFFLUX_TRUSTED_PROXIES: {exc}") from exc

    def admin_token_value(self) -> str | None:
        return self.admin_token.get_secret_value() if self.admin_token else None
