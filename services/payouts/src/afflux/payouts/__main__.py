"""``python -m afflux.payouts``: the payouts service on settings.host:payouts_port."""

from __future__ import annotations

import sys
from typing import Any

from afflux.payouts.app import create_app
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.io.http.operator_port import serve_with_operator_port
from afflux.shared.io.http.run import run_service
from afflux.shared.io.http_limits import HttpLimits


def serve(app: Any, host: str, port: int, limits: HttpLimits | None) -> bool:
    """The payouts port serves browsers too: operators' paths may get a port of their own."""
    operator_port: int = app.state.settings.payouts_operator_port
    return serve_with_operator_port(app, host, port, limits, operator_port)


def main() -> int:
    return run_service(
        "afflux payouts",
        PayoutsSettings,
        create_app,
        port=lambda settings: settings.payouts_port,
        serve_with=serve,
    )


if __name__ == "__main__":
    sys.exit(main())
