"""Route dependencies that read one value ``create_app`` put on ``app.state``.

A service names each in an ``Annotated`` alias, the type written once there:
``StoreDep = Annotated[LinkStore, Depends(state_dep("store"))]``. Each is
``async def fn(request)`` so it runs on the event loop (no thread-pool hop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from afflux.shared.io.http.problems import Problem


def state_dep(name: str) -> Callable[[Request], Awaitable[Any]]:
    """The dependency returning ``app.state.<name>``, set when the app was built."""

    async def from_state(request: Request) -> Any:
        return getattr(request.app.state, name)

    from_state.__name__ = f"{name}_of"
    return from_state


def started_dep(name: str) -> Callable[[Request], Awaitable[Any]]:
    """The dependency returning ``app.state.<name>``, or 503 until the lifespan has set it."""

    async def once_started(request: Request) -> Any:
        value = getattr(request.app.state, name, None)
        if value is None:
            raise Problem(503, None, "starting")
        return value

    once_started.__name__ = f"{name}_of"
    return once_started
