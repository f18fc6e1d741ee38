"""Settings of the afflux command (``AFFLUX_*``), built once when a command starts."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from afflux.shared.settings import CommonSettings


class CliSettings(CommonSettings):
    """What ``afflux up`` and ``afflux demo`` need beyond the common settings."""

    kafka_bootstrap: str = Field("", description="empty: start the embedded broker")
    redis_url: str = Field("", description="empty: start an embedded redis-server")
    clicks_port: int = 8001
    orders_port: int = 8002
    payouts_port: int = 8003
    attribution_port: int = 8004
    campaigns_file: Path | None = Field(None, description="terms YAML applied by afflux up")
    up_env: str = Field(
        "",
        description="set by an afflux up stack's env file (.afflux/up/env): this shell holds"
        " that stack's addresses and token",
    )

    def ports(self) -> dict[str, int]:
        return {
            "clicks": self.clicks_port,
            "orders": self.orders_port,
            "payouts": self.payouts_port,
            "attribution": self.attribution_port,
        }
