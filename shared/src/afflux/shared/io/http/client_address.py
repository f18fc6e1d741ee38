"""The client's address for per-address limits and records: the TCP peer, unless the
peer is a configured trusted proxy (``AFFLUX_TRUSTED_PROXIES``; clicks adds
``AFFLUX_CLICKS_TRUSTED_PROXIES``), then the right-most untrusted ``X-Forwarded-For``
hop (afflux.shared.core.proxies). uvicorn's own proxy-header handling is off in every
service (afflux.shared.io.serving), so only this decides. docs/reliability.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request

from afflux.shared.core import proxies
from afflux.shared.core.proxies import Network

_UNKNOWN = "unknown"  # no peer at all (a test transport may give none)


class ProxyTrust:
    """Which peers may tell us the client's address and scheme (X-Forwarded-For/-Proto);
    a verdict per address is remembered (bounded), as the redirect asks per click."""

    def __init__(self, networks: Sequence[Network] = ()) -> None:
        self.networks = tuple(networks)
        self._verdicts: dict[str, bool] = {}

    def trusted(self, address: str) -> bool:
        if not self.networks:
            return False
        verdict = self._verdicts.get(address)
        if verdict is None:
            verdict = proxies.in_networks(address, self.networks)
            if len(self._verdicts) >= 10_000:
                self._verdicts.clear()
            self._verdicts[address] = verdict
        return verdict

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        """The client address: the peer, or when the peer is a trusted proxy the right-most
        X-Forwarded-For entry that is not itself a trusted proxy."""
        return proxies.client_address(peer, forwarded_for, self.trusted)

    def of_request(self, request: Request) -> str:
        """The client of ``request``; several X-Forwarded-For lines count as one list."""
        peer = request.client.host if request.client else _UNKNOWN
        return self.client_ip(
            peer, proxies.joined_lines(request.headers.getlist("x-forwarded-for"))
        )
