"""``python -m afflux.orders``: the orders service on settings.host:orders_port."""

from __future__ import annotations

import dataclasses
import logging
import sys

from pydantic import ValidationError

from afflux.orders.app import create_app
from afflux.orders.merchant_secrets import InvalidSecrets
from afflux.orders.settings import OrdersSettings
from afflux.shared.http_limits import HttpLimits
from afflux.shared.secret_policy import settings_error
from afflux.shared.serving import serve, unreachable

NAME = "afflux orders"


def reachable(settings: OrdersSettings) -> str | None:
    """None when the broker and Redis answer, else one line saying which and where."""
    return unreachable(NAME, settings.kafka_bootstrap, settings.redis_url)


def http_limits(settings: OrdersSettings) -> HttpLimits:
    """The shared limits, with room for the largest body the service itself accepts (a batch)."""
    limits = HttpLimits.from_settings(settings)
    largest = max(limits.max_body_bytes, settings.orders_max_batch_body_bytes)
    return dataclasses.replace(limits, max_body_bytes=largest)


def main() -> int:
    try:
        settings = OrdersSettings()
    except ValidationError as exc:
        print(f"{NAME}: invalid settings: {settings_error(exc)}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))
    try:
        app = create_app(settings)
    except InvalidSecrets as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 2
    problem = reachable(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    return 0 if serve(app, settings.host, settings.orders_port, http_limits(settings)) else 1


if __name__ == "__main__":
    sys.exit(main())
