"""Serve the payouts app with uvicorn until SIGTERM/SIGINT, then exit 0."""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI


def _stopped(signum: int, frame: FrameType | None) -> None:
    return None


def serve(app: FastAPI, host: str, port: int) -> bool:
    """True when the server started (and then stopped cleanly)."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the stop signal after a clean shutdown; a no-op handler
    # turns that into a normal return, so SIGTERM exits 0.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    server.run()
    return bool(server.started)
