"""``python -m afflux.clicks``: the clicks service on settings.host:clicks_port."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from afflux.clicks.app import create_app, open_wal
from afflux.clicks.server import serve
from afflux.clicks.settings import ClicksSettings
from afflux.clicks.wal import WalBusy
from afflux.shared.http_limits import HttpLimits
from afflux.shared.secret_policy import settings_error
from afflux.shared.serving import unreachable

NAME = "afflux clicks"


def reachable(settings: ClicksSettings) -> str | None:
    """None when the broker and Redis answer, else one line saying which and where."""
    problem = unreachable(NAME, settings.kafka_bootstrap, settings.redis_url)
    if problem:
        return problem
    try:
        open_wal(settings).close()
    except (WalBusy, OSError) as exc:
        return f"{NAME}: cannot use the click log: {exc}"
    return None


def main() -> int:
    try:
        settings = ClicksSettings()
    except ValidationError as exc:
        print(f"{NAME}: invalid settings: {settings_error(exc)}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The shipper reports the broker's state itself (one warning when the broker stops taking
    # clicks, one line when it takes them again); aiokafka would log every reconnect attempt.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    problem = reachable(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    limits = HttpLimits.from_settings(settings)
    return 0 if serve(create_app(settings), settings.host, settings.clicks_port, limits) else 1


if __name__ == "__main__":
    sys.exit(main())
