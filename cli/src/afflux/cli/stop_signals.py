"""SIGINT and SIGTERM stop the long-running commands cleanly, however they were started.

A shell without job control (a script running ``afflux up &``) starts a background
command with SIGINT ignored, and Python then installs no KeyboardInterrupt handler:
such a command would ignore SIGINT for good. So the commands set both handlers
themselves instead of relying on what they inherited.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

Handler = Callable[[int, FrameType | None], Any] | int | None


class Stopped(Exception):
    """SIGINT or SIGTERM arrived: stop what was started, then exit."""


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


@contextmanager
def _handling(handler: Callable[[int, FrameType | None], Any] | int) -> Iterator[None]:
    previous: dict[int, Handler] = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            # None: a handler set outside Python, which cannot be put back; the default then.
            signal.signal(sig, signal.SIG_DFL if old is None else old)


def stop_on_signals() -> AbstractContextManager[None]:
    """Within: SIGINT and SIGTERM raise ``Stopped``, even when SIGINT was inherited as
    ignored. The handlers found before are put back on leaving."""
    return _handling(_raise_stopped)


def signals_held() -> AbstractContextManager[None]:
    """Within: SIGINT and SIGTERM are ignored, so a second Ctrl-C cannot cut a shutdown
    short and orphan a child."""
    return _handling(signal.SIG_IGN)
