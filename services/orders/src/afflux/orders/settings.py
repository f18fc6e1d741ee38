"""Settings of the orders service (`AFFLUX_*` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from afflux.shared.settings import CommonSettings


class OrdersSettings(CommonSettings):
    """Built once in the entrypoint, never at import."""

    orders_port: int = Field(8002, ge=1, le=65535, description="HTTP port of the orders service")
    orders_operator_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="a second, internal port: /metrics (every campaign's order and refund "
        "counts) answers only there, not on the merchants' port (0: on the one port); the "
        "API reference stays on the merchants' port, for integrators",
    )
    merchant_secrets_file: Path | None = Field(
        None, description="YAML/JSON file: merchant_id -> [secret, secret]"
    )
    merchant_secrets: SecretStr | None = Field(
        None, description='JSON: {"merchant_id": ["secret", "next-secret"]}'
    )
    orders_max_body_bytes: int = Field(
        65_536, ge=1_024, description="largest body of a single order, refund or confirmation"
    )
    orders_max_batch_body_bytes: int = Field(
        4_194_304, ge=1_024, description="largest body of POST /v1/orders:batch"
    )
    orders_clock_skew_s: int = Field(
        300,
        ge=0,
        description="how far a merchant's clock may be off ours, either way: event times "
        "within it are placed at the receive time; later ones are refused",
    )
    orders_backfill_limit_days: int | None = Field(
        None,
        ge=1,
        description="oldest event time accepted without an admin backfill; unset: the "
        "campaign's longest cookie window plus its longest lock",
    )
    orders_signature_tolerance_s: int = Field(
        300, ge=1, description="accepted age (either way) of a signature timestamp"
    )
    orders_dedupe_ttl_days: int = Field(
        400, ge=1, description="how long order and refund ids are remembered for idempotency"
    )
    orders_pending_s: float = Field(
        30.0, gt=0, description="how long an in-flight claim holds an id before it may be retaken"
    )
    orders_produce_timeout_s: float = Field(
        10.0, gt=0, description="how long to wait for the broker's ack before answering 503"
    )
    orders_pack_records: bool = Field(
        True,
        description="pack events produced in the same instant into one record per partition",
    )
    orders_linger_ms: int = Field(
        0,
        ge=0,
        description="producer linger; 0 because events are already packed per event-loop turn",
    )
    orders_batches_in_flight: int = Field(
        1,
        ge=1,
        le=64,
        description="order batches (claim, produce, await the broker) running at once; "
        "orders arriving meanwhile gather into the next batch",
    )
    orders_redis_prefix: str = Field("afx:orders", description="Redis key prefix")
    orders_outcome_index: bool = Field(
        True,
        description="keep the order-outcome index (GET /v1/orders/{order_id}) from the topics",
    )
    orders_outcome_retention_days: int = Field(
        400, ge=1, description="how long an order's outcome is kept after its last event"
    )
    payouts_url: str | None = Field(
        None,
        description="the payouts service's base URL: GET /v1/orders/{order_id} asks it for "
        "the order's postings (unset: the answer says the ledger was not asked)",
    )
