"""``python -m afflux.payouts``: the payouts service on settings.host:payouts_port."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from afflux.payouts.app import create_app
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.http_limits import HttpLimits
from afflux.shared.secret_policy import settings_error
from afflux.shared.serving import serve, unreachable

NAME = "afflux payouts"


def reachable(settings: PayoutsSettings) -> str | None:
    """None when the broker and Redis answer, else one line saying which and where."""
    return unreachable(NAME, settings.kafka_bootstrap, settings.redis_url)


def main() -> int:
    try:
        settings = PayoutsSettings()
    except ValidationError as exc:
        print(f"{NAME}: invalid settings: {settings_error(exc)}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))
    app = create_app(settings)
    problem = reachable(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    limits = HttpLimits.from_settings(settings)
    return 0 if serve(app, settings.host, settings.payouts_port, limits) else 1


if __name__ == "__main__":
    sys.exit(main())
