"""The one uvicorn set-up, shared by the service and its benchmark baseline."""

from __future__ import annotations

import gc
import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI


def _stopped(signum: int, frame: FrameType | None) -> None:
    return None


GC_THRESHOLD = (50_000, 20, 100)


def tune_gc() -> None:
    """Fewer, cheaper collections for a request-serving process.

    Request handling creates no reference cycles, yet with the default gen-0
    threshold (700) the collector runs every few requests and walks every live
    coroutine and future; profiling showed it costing more than the handler.
    ``gc.freeze`` moves what start-up built (modules, schemas, clients) out of
    the collector's view.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def serve(app: FastAPI, host: str, port: int) -> bool:
    """Serve until SIGTERM/SIGINT; True when the server started (and then stopped cleanly).

    The service and its benchmark baseline both run through here, so they share
    one server set-up (uvicorn defaults: uvloop, httptools; GC tuning).
    """
    tune_gc()
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the stop signal once it has shut down cleanly; a no-op
    # handler turns that into a normal return, so SIGTERM exits 0.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    server.run()
    return bool(server.started)
