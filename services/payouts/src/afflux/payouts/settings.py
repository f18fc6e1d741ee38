"""Settings of the payouts service (`AFFLUX_*` environment variables)."""

from __future__ import annotations

from pydantic import Field

from afflux.payouts.webhooks.settings import WebhookSettings
from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.settings import CommonSettings


class PayoutsSettings(WebhookSettings, CommonSettings):
    """Built once in the entrypoint, never at import."""

    payouts_port: int = Field(8003, ge=1, le=65535, description="HTTP port of the payouts service")
    # What-if replays leave out what the attribution worker refused: they read its settings.
    attribution_clock_skew_s: int = Field(
        DEFAULT_CLOCK_SKEW_MS // 1000,
        ge=0,
        description="the attribution worker's setting, read here too: what-if leaves out an"
        " input event stamped more than it after its record's timestamp, as the worker does",
    )
    orders_backfill_limit_days: int | None = Field(
        None,
        ge=1,
        description="the orders service's setting, read here too: what-if leaves out an order,"
        " refund or renewal older than the backfill limit, as the attribution worker does",
    )
    payouts_operator_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="a second, internal port: /metrics, /openapi.json and /docs answer only "
        "there, not on the port browsers reach the portal at (0: on the one port)",
    )
    payouts_public_url: str = Field(
        "",
        description="the URL browsers reach the payouts pages at (https://portal.example.com): "
        "its origin is accepted on forms, and https makes the session cookie Secure",
    )
    session_ttl_seconds: int = Field(
        8 * 3600, ge=60, description="a portal login session ends this long after it began"
    )
    clicks_url: str = Field(
        "",
        description="the clicks service's base URL (http://clicks:8001): the portal creates "
        "and lists a creator's tracking links through its links API",
    )
    portal_links_per_campaign: int = Field(
        100,
        ge=1,
        le=100_000,
        description="tracking links a creator may make for itself in one campaign through the "
        "portal, deactivated ones included (POST /v1/links with the admin token is not bound)",
    )
    creator_content_per_campaign: int = Field(
        1_000,
        ge=1,
        le=1_000_000,
        description="contents a creator's own key may publish in one campaign (POST "
        "/v1/content): each is Redis state and a row of the brand's pages until released; "
        "the brand's and the admin token's publications are not bound",
    )
    orders_url: str = Field(
        "",
        description="the orders service's base URL (http://orders:8002): a campaign's portal "
        "page reads its unattributed orders, late clicks and assists there",
    )
    payouts_group_id: str = Field("afflux-payouts", description="consumer group of the ledger")
    instance_id: str = Field("", description="static group membership id of this replica")
    ledger_cache_lines: int = Field(
        400_000,
        ge=0,
        description="ledger lines of recently written campaign-periods kept in memory (about "
        "1.5 KB each), so a batch reads nothing it already has; 0 reloads a period per batch",
    )
    ledger_retention_days: int = Field(
        400,
        ge=1,
        description="days after a period closes to new facts (its end, plus the longest "
        "window and lock of its terms; or after a write to a period already closed) that "
        "its per-event facts (line records, applied event ids, click ids) are kept; "
        "postings, balances and KPIs stay",
    )
    ledger_compact_grace_days: int = Field(
        400,
        ge=0,
        description="days after a period's end + its campaign's longest window + longest lock "
        "before it is closed and, once fully paid, compacted into a statement snapshot",
    )
    ledger_compact_interval_s: float = Field(
        86_400.0,
        ge=0,
        description="how often the service compacts closed, fully paid periods (the first "
        "pass one interval after start); 0: never (afflux ledger compact still does)",
    )
    ledger_max_poll_records: int = Field(
        500,
        ge=1,
        description="records the ledger applies per batch; smaller batches keep the HTTP "
        "answers of the same process prompt while a backlog is worked through",
    )
    ledger_verify_interval_s: float = Field(
        30.0,
        gt=0,
        description="how often every partition's stored offset and last applied record are "
        "checked against the log (also at every assignment)",
    )
    whatif_max_events: int = Field(
        20_000_000,
        ge=1,
        description="a what-if replay reads at most this many events from the input topics; "
        "past it the request is refused (413)",
    )
    whatif_max_campaign_events: int = Field(
        2_000_000,
        ge=1,
        description="a what-if replay holds at most this many of the campaign's own events in"
        " memory (about 500 bytes each); past it the request is refused (413)",
    )
    whatif_time_limit_s: float = Field(
        60.0,
        gt=0,
        le=600,
        description="a what-if replay that has not finished after this long is refused (503); "
        "one runs at a time per process",
    )
