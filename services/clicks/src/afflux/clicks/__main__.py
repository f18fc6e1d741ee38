"""``python -m afflux.clicks``: the clicks service on settings.host:clicks_port."""

from __future__ import annotations

import dataclasses
import logging
import sys

from afflux.clicks.app import create_app, open_wal
from afflux.clicks.server import serve
from afflux.clicks.settings import ClicksSettings
from afflux.clicks.wal import WalBusy
from afflux.shared.io.http.run import run_service
from afflux.shared.io.http_limits import HttpLimits

NAME = "afflux clicks"


def wal_refused(settings: ClicksSettings) -> str | None:
    """None when the click log can be opened, else one line saying why not."""
    try:
        open_wal(settings).close()
    except (WalBusy, OSError) as exc:
        return f"{NAME}: cannot use the click log: {exc}"
    return None


def http_limits(settings: ClicksSettings) -> HttpLimits:
    """The shared limits, the redirect's own trusted proxies exempt from the per-address
    connection bound like every service's (each carries many visitors' clicks)."""
    limits = HttpLimits.from_settings(settings)
    return dataclasses.replace(limits, trusted_proxies=settings.trusted_networks())


def main() -> int:
    return run_service(
        NAME,
        ClicksSettings,
        create_app,
        port=lambda settings: settings.clicks_port,
        check=wal_refused,
        # The shipper reports the broker's state itself (one warning when the broker stops
        # taking clicks, one line when it takes them again); aiokafka would log every
        # reconnect attempt.
        quiet={"aiokafka": logging.CRITICAL},
        serve_with=serve,
        limits=http_limits,
    )


if __name__ == "__main__":
    sys.exit(main())
