"""The clicks app as granian builds it, for ``afflux bench clicks --server granian``.

    python -m granian --interface asgi --factory afflux.bench.clicks_granian:clicks_app

Settings come from the environment as for ``python -m afflux.clicks``; the start-up
checks of the service's own entry point are left to the bench, which starts the
broker and Redis itself.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from afflux.clicks.app import create_app
from afflux.clicks.settings import ClicksSettings
from afflux.shared.io.gc_policy import tune_gc


def clicks_app() -> FastAPI:
    settings = ClicksSettings()
    logging.basicConfig(level=settings.log_level)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    tune_gc()
    return create_app(settings)
