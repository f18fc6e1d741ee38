"""The bounds every afflux HTTP server puts on a client (see docs/reliability.md, "HTTP limits")."""

from __future__ import annotations

from dataclasses import dataclass

from afflux.shared.core.proxies import Network
from afflux.shared.settings import CommonSettings


@dataclass(frozen=True)
class HttpLimits:
    """How much a client may send, how slowly, and how many connections a process holds."""

    # request line plus header lines, as received
    max_header_bytes: int = 16 * 1024
    # a declared Content-Length above it is refused before the app runs; chunked bodies when crossed
    max_body_bytes: int = 1024 * 1024
    # from the connection (or the request's first byte) to the end of its headers
    header_timeout_seconds: float = 10.0
    # from the end of the headers to the end of the body
    body_timeout_seconds: float = 30.0
    # an idle connection between requests is closed after this
    keep_alive_seconds: int = 5
    # open connections per process; one more is answered 503 and closed
    max_connections: int = 1000
    # open connections per client address (IPv6: per /64), trusted proxies not counted
    max_connections_per_address: int = 100
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> HttpLimits:
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            max_body_bytes=settings.http_max_body_bytes,
            header_timeout_seconds=settings.http_header_timeout_seconds,
            body_timeout_seconds=settings.http_body_timeout_seconds,
            keep_alive_seconds=settings.http_keep_alive_seconds,
            max_connections=settings.http_max_connections,
            max_connections_per_address=settings.http_max_connections_per_address,
            trusted_proxies=settings.trusted_proxy_networks(),
        )
