"""Settings of the attribution worker (`AFFLUX_*` environment variables)."""

from __future__ import annotations

from pydantic import Field

from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.settings import CommonSettings


class AttributionSettings(CommonSettings):
    """Built once in the entrypoint, never at import."""

    attribution_port: int = Field(
        8004, ge=1, le=65535, description="HTTP port of the worker's /healthz and /metrics"
    )
    instance_id: str = Field(
        "", description="static group membership id; a restarted worker with the same id resumes"
    )
    attribution_group: str = Field("afflux-attribution", description="consumer group / app id")
    refund_wait_seconds: float = Field(
        30.0, ge=0, description="how long a refund waits for its order's outcome (after grace)"
    )
    session_timeout_seconds: float = Field(
        6.0, ge=1, description="how soon the group notices a dead worker"
    )
    timer_interval_seconds: float = Field(0.25, gt=0, description="grace timer period")
    order_retention_days: int = Field(
        400, ge=1, description="how long decided order ids are kept for de-duplication"
    )
    attribution_clock_skew_s: int = Field(
        DEFAULT_CLOCK_SKEW_MS // 1000,
        ge=0,
        description="how far an input event's occurred_at may be after its record's timestamp;"
        " later ones are dead-lettered (event_time_in_future)",
    )
    attribution_redecide: bool = Field(
        True,
        description="test only: false keeps the first decision when a late click would change"
        " it, to prove that `afflux verify` notices an arrival-dependent answer",
    )
