"""``python -m afflux.payouts``: the payouts service on settings.host:payouts_port."""

from __future__ import annotations

import sys

from afflux.payouts.app import create_app
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.io.http.run import run_service


def main() -> int:
    return run_service(
        "afflux payouts",
        PayoutsSettings,
        create_app,
        port=lambda settings: settings.payouts_port,
    )


if __name__ == "__main__":
    sys.exit(main())
