"""Settings of the attribution worker (`AFFLUX_*` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from afflux.attribution.join import DEFAULT_CLICKS_PER_VISITOR
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
    timer_interval_seconds: float = Field(
        0.025, gt=0, description="how often the worker decides what is due (orders, refunds)"
    )
    arrival_margin_ms: int = Field(
        50,
        ge=0,
        description="how long after its timestamp a record is taken to be in its log: an"
        " order is decided once its inputs are read up to its grace's end plus this margin;"
        " a record that took longer arrives late and is corrected for",
    )
    order_retention_days: int = Field(
        400, ge=1, description="how long decided order ids are kept for de-duplication"
    )
    attribution_clock_skew_s: int = Field(
        DEFAULT_CLOCK_SKEW_MS // 1000,
        ge=0,
        description="how far an input event's occurred_at may be after its record's timestamp;"
        " later ones are dead-lettered (event_time_in_future)",
    )
    orders_backfill_limit_days: int | None = Field(
        None,
        ge=1,
        description="the orders service's setting of the same name, read here too: an"
        " order, refund or renewal dated more than it (unset: per campaign, the longest"
        " cookie window plus the longest lock) plus the clock skew before its record's"
        " timestamp is dead-lettered (event_time_too_old), unless its record carries the"
        " backfill header",
    )
    state_store: Literal["memory", "disk"] = Field(
        "memory",
        description="where the join and refund stages keep their per-key state: memory (all"
        " of it in RAM; recovery reads the whole changelog) or disk (RocksDB per stage"
        " partition under state_dir; RAM holds a cache and the timer indexes; recovery reads"
        " the local store and the changelog written after its last checkpoint)",
    )
    state_dir: Path | None = Field(
        None, description="the disk store's directory (default: data_dir/attribution-state)"
    )
    state_cache_keys: int = Field(
        4096, ge=16, description="decoded states the disk store keeps in RAM per partition"
    )
    state_checkpoint_seconds: float = Field(
        5.0,
        gt=0,
        description="how often the disk store writes what changed (the changelog tail a"
        " recovery reads is about this long)",
    )
    attribution_clicks_per_visitor: int = Field(
        DEFAULT_CLICKS_PER_VISITOR,
        ge=10,
        description="the most clicks the join keeps per visitor id; past it a click flagged"
        " for any reason is given up first, then the oldest (by time, then id). A person"
        " makes a few; a script replaying one cookie makes thousands a minute, each one"
        " recorded flagged, and unbounded they grew one key's state past the broker's"
        " record limit and made every batch holding the key re-encode all of them",
    )
    attribution_redecide: bool = Field(
        True,
        description="test only: false keeps the first decision when a late click would change"
        " it, to prove that `afflux verify` notices an arrival-dependent answer",
    )
