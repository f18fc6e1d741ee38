"""``python -m afflux.orders``: the orders service on settings.host:orders_port."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from afflux.orders.app import configured_secrets, create_app
from afflux.orders.merchant_secrets import InvalidSecrets
from afflux.orders.settings import OrdersSettings
from afflux.shared.io.http.operator_port import serve_with_operator_port
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


def serve(app: Any, host: str, port: int, limits: HttpLimits | None) -> bool:
    """The merchants' port: /metrics (another merchant's volumes) may get a port of its
    own; the API reference stays, for integrators."""
    operator_port: int = app.state.settings.orders_operator_port
    return serve_with_operator_port(app, host, port, limits, operator_port, ("/metrics",))


def main() -> int:
    return run_service(
        NAME,
        OrdersSettings,
        create_app,
        port=lambda settings: settings.orders_port,
        serve_with=serve,
        limits=http_limits,
        check=secrets_refused,
        refused=(InvalidSecrets,),
    )


if __name__ == "__main__":
    sys.exit(main())
