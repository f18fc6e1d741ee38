"""Settings of the webhook sender (``AFFLUX_WEBHOOKS_*``), part of the payouts settings."""

from __future__ import annotations

from pydantic import BaseModel, Field


class WebhookSettings(BaseModel):
    webhooks_enabled: bool = Field(
        True, description="run the webhook sender in this payouts process"
    )
    webhooks_group_id: str = Field("afflux-webhooks", description="consumer group of the sender")
    webhooks_allow_private: bool | None = Field(
        None,
        description="allow endpoints on loopback, private and link-local addresses; unset: "
        "allowed in development, refused in production",
    )
    webhooks_max_attempts: int = Field(8, ge=1, le=30, description="attempts per delivery")
    webhooks_retry_base_s: float = Field(
        30.0, gt=0, description="backoff ceiling after the first failure, doubling after each"
    )
    webhooks_retry_cap_s: float = Field(3600.0, gt=0, description="largest backoff ceiling")
    webhooks_timeout_s: float = Field(10.0, gt=0, le=60, description="whole request timeout")
    webhooks_max_body_bytes: int = Field(
        65_536, ge=1_024, description="larger event bodies are dead-lettered, never sent"
    )
    webhooks_max_response_bytes: int = Field(
        4_096, ge=0, description="bytes of an answer read (kept for the dead letter's reason)"
    )
    webhooks_max_endpoints_per_owner: int = Field(10, ge=1, le=1_000)
    webhooks_max_queue_per_endpoint: int = Field(
        10_000, ge=1, description="scheduled deliveries per endpoint; more are dead-lettered"
    )
    webhooks_max_dead_per_endpoint: int = Field(
        1_000, ge=1, description="dead letters kept per endpoint, newest first"
    )
    webhooks_concurrency: int = Field(16, ge=1, le=1_000, description="requests in flight")
    webhooks_replay_max_events: int = Field(
        10_000, ge=1, description="events one replay schedules at most"
    )

    def private_addresses_allowed(self, env: str) -> bool:
        if self.webhooks_allow_private is not None:
            return self.webhooks_allow_private
        return env == "development"
