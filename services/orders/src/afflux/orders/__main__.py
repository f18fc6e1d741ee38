"""``python -m afflux.orders``: the orders service on settings.host:orders_port."""

from __future__ import annotations

import dataclasses
import sys

from afflux.orders.app import configured_secrets, create_app
from afflux.orders.merchant_secrets import InvalidSecrets
from afflux.orders.settings import OrdersSettings
from afflux.shared.io.http.run import run_service
from afflux.shared.io.http_limits import HttpLimits

NAME = "afflux orders"


def secrets_refused(settings: OrdersSettings) -> str | None:
    """None when the merchant secrets load, else the one line saying why not."""
    try:
        configured_secrets(settings)
    except InvalidSecrets as exc:
        return f"{NAME}: {exc}"
    return None


def http_limits(settings: OrdersSettings) -> HttpLimits:
    """The shared limits, with room for the largest body the service itself accepts (a batch)."""
    limits = HttpLimits.from_settings(settings)
    largest = max(limits.max_body_bytes, settings.orders_max_batch_body_bytes)
    return dataclasses.replace(limits, max_body_bytes=largest)


def main() -> int:
    return run_service(
        NAME,
        OrdersSettings,
        create_app,
        port=lambda settings: settings.orders_port,
        limits=http_limits,
        check=secrets_refused,
        refused=(InvalidSecrets,),
    )


if __name__ == "__main__":
    sys.exit(main())
