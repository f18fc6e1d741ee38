"""Settings of the clicks service (`AFFLUX_*` environment variables)."""

from __future__ import annotations

import ipaddress
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from afflux.shared.core.address_group import (
    DEFAULT_IPV6_PREFIX_BITS,
    MAX_IPV6_PREFIX_BITS,
    MIN_IPV6_PREFIX_BITS,
)
from afflux.shared.core.proxies import Network, parse_networks
from afflux.shared.secret_policy import require_strong
from afflux.shared.settings import CommonSettings


class ClicksSettings(CommonSettings):
    """Built once in the entrypoint, never at import."""

    clicks_port: int = Field(8001, ge=1, le=65535, description="HTTP port of the clicks service")
    clicks_operator_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="a second, internal port of the clicks service: /metrics, /openapi.json "
        "and /docs answer only there, not on the public redirect port (0: on the one port)",
    )
    clicks_public_url: str = Field(
        "http://127.0.0.1:8001", description="public base URL of tracking links (url + /c/{code})"
    )
    clicks_duplicate_window_s: int = Field(
        30,
        ge=0,
        description="same visitor on a link of the same creator and campaign within this "
        "many seconds: duplicate",
    )
    clicks_ip_duplicate_window_s: int = Field(
        3600,
        ge=0,
        description="same IP hash and user agent (family and major version) on a creator's "
        "links to a campaign within this many seconds: ip_duplicate (campaign terms' "
        "ip_duplicate_window_s overrides it)",
    )
    clicks_ip_agents_per_window: int = Field(
        4,
        ge=0,
        le=1_000,
        description="counted clicks from one IP hash on one creator's links to a campaign "
        "within its IP duplicate window, whatever the user agent; more: ip_duplicate (a "
        "household's few browsers count, a script rotating user agents does not; 0: no "
        "bound; campaign terms' ip_agents_per_window overrides it)",
    )
    clicks_ip_rate_per_minute: int = Field(
        30, ge=0, description="more clicks than this from one IP hash in a minute: rate (0: off)"
    )
    clicks_quality_max_entries: int = Field(
        500_000, ge=100, description="entries kept per click-quality table (oldest dropped)"
    )
    clicks_ip_hash_secret: SecretStr | None = Field(
        None, description="HMAC key for client IPs; generated per process in development"
    )
    clicks_ipv6_prefix_bits: int = Field(
        DEFAULT_IPV6_PREFIX_BITS,
        ge=MIN_IPV6_PREFIX_BITS,
        le=MAX_IPV6_PREFIX_BITS,
        description="an IPv6 client counts as its network of this many bits for the IP hash "
        "(IP duplicate windows, the rate limit, same_ip): a host rotating its address inside "
        "its /64 is one address (128: every address alone)",
    )
    clicks_trusted_proxies: str = Field(
        "",
        description="comma-separated addresses/CIDRs whose X-Forwarded-For/-Proto is trusted "
        "by the redirect, besides those of AFFLUX_TRUSTED_PROXIES",
    )
    clicks_wal_window_ms: float = Field(
        0.0,
        ge=0,
        le=100,
        description="extra wait before a write-ahead-log fsync so more clicks share it "
        "(clicks arriving during an fsync always share the next one)",
    )
    clicks_wal_max_bytes: int = Field(
        1024**3,
        ge=1024 * 1024,
        description="size limit of the click write-ahead log; beyond it clicks are not recorded",
    )
    clicks_wal_segment_bytes: int = Field(
        16 * 1024 * 1024, ge=4096, description="size of one write-ahead-log segment file"
    )
    clicks_send_timeout_ms: int = Field(
        5_000, ge=100, description="how long the producer tries a batch before it is retried"
    )
    clicks_linger_ms: int = Field(
        100,
        ge=0,
        le=1_000,
        description="how long the shipper gathers events into one batch when it is caught up",
    )
    clicks_retry_ms: int = Field(
        1_000,
        ge=10,
        description="pause between attempts to re-send a batch the broker did not take",
    )
    clicks_link_cache_max: int = Field(
        200_000, ge=100, description="links (and unknown codes) cached in the process"
    )
    clicks_redis_prefix: str = Field("afx:clicks", description="Redis key prefix")
    instance_id: str = Field(
        "", description="separates the click logs of replicas sharing AFFLUX_DATA_DIR"
    )

    @field_validator("clicks_public_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")

    @field_validator("instance_id")
    @classmethod
    def _safe_instance(cls, value: str) -> str:
        if value and not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError("instance_id may hold letters, digits, '-' and '_' only")
        return value

    @model_validator(mode="after")
    def _production_needs_ip_secret(self) -> Self:
        if self.env == "production":
            secret = self.clicks_ip_hash_secret
            value = secret.get_secret_value() if secret else None
            require_strong("AFFLUX_CLICKS_IP_HASH_SECRET", value)
            require_public_url(
                self.clicks_public_url, given="clicks_public_url" in self.model_fields_set
            )
        self.trusted_networks()  # fail at start, not on the first request
        return self

    def trusted_networks(self) -> tuple[Network, ...]:
        """The proxies the redirect trusts: ``AFFLUX_TRUSTED_PROXIES`` (every service's)
        and ``AFFLUX_CLICKS_TRUSTED_PROXIES`` (the redirect's own) together."""
        try:
            own = parse_networks(self.clicks_trusted_proxies)
        except ValueError as exc:
            raise ValueError(f"AFFLUX_CLICKS_TRUSTED_PROXIES: {exc}") from exc
        shared = self.trusted_proxy_networks()
        return shared + tuple(n for n in own if n not in shared)


PUBLIC_URL = "AFFLUX_CLICKS_PUBLIC_URL"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def loopback_host(url: str) -> str | None:
    """The host of ``url`` when only this machine reaches it (loopback), else None."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: whether it resolves publicly is the operator's to know
    return host if address.is_loopback or address.is_unspecified else None


def require_public_url(url: str, *, given: bool) -> None:
    """Production tracking links must open for everyone: refuse a missing or loopback URL."""
    if not given or not url:
        raise ValueError(
            f"{PUBLIC_URL} is required when AFFLUX_ENV=production: the public base URL of "
            "tracking links, e.g. https://go.example.com"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{PUBLIC_URL} must be an http(s) URL with a host, e.g. https://go.example.com"
        )
    host = loopback_host(url)
    if host is not None:
        raise ValueError(
            f"{PUBLIC_URL} points at {host}, which only this machine reaches "
            "(AFFLUX_ENV=production): tracking links would open for no one; set the public "
            "base URL, e.g. https://go.example.com"
        )
