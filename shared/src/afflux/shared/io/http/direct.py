"""Routes that skip FastAPI's request handling but keep its dependency aliases.

A hot endpoint that reads its raw body itself (a signature is checked over the
bytes before anything is parsed) gains nothing from FastAPI's parameter, body and
response handling, only cost. ``direct_route`` serves such an endpoint as a plain
Starlette route while its signature still names what it touches with the same
``Annotated[T, Depends(fn)]`` aliases the FastAPI routes use: the aliases are read
once, when the route is built, and each request calls ``await fn(request)`` for
each of them, in the signature's order, before the endpoint.

Only dependencies of the form ``async def fn(request: Request) -> T`` are accepted
(anything else raises TypeError at build time); the endpoint may also take the
``Request`` itself and must return a Response. Direct routes are not in FastAPI's
generated schema: a service describes them with hand-written path items
(afflux.shared.io.http.apidocs.install_api_docs).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import orjson
from fastapi.params import Depends
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Dependency = Callable[[Request], Awaitable[Any]]
Endpoint = Callable[..., Awaitable[Response]]


def _dependency(name: str, hint: Any) -> Dependency | None:
    """The dependency a parameter names, or None for the Request itself."""
    if hint is Request:
        return None
    if get_origin(hint) is Annotated:
        for extra in get_args(hint)[1:]:
            if isinstance(extra, Depends) and extra.dependency is not None:
                function = extra.dependency
                parameters = list(inspect.signature(function).parameters)
                if inspect.iscoroutinefunction(function) and len(parameters) == 1:
                    return function
                raise TypeError(f"{name}: a direct route's dependency is async fn(request)")
    raise TypeError(f"parameter {name!r} is neither the Request nor an Annotated dependency")


def _resolved(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    hints = get_type_hints(endpoint, include_extras=True)
    hints.pop("return", None)
    wiring = [(name, _dependency(name, hint)) for name, hint in hints.items()]

    async def handle(request: Request) -> Response:
        # A plain loop: an async comprehension would add a coroutine per request.
        kwargs: dict[str, Any] = {}
        for name, dependency in wiring:
            kwargs[name] = request if dependency is None else await dependency(request)
        return await endpoint(**kwargs)

    handle.__name__ = endpoint.__name__
    handle.__doc__ = endpoint.__doc__
    return handle


def direct_route(path: str, endpoint: Endpoint, methods: Sequence[str]) -> Route:
    """``endpoint`` at ``path`` as a plain Starlette route with its dependencies resolved."""
    return Route(path, _resolved(endpoint), methods=list(methods), include_in_schema=False)


class JsonAnswer(Response):
    """A JSON answer encoded by orjson: the same bytes as Starlette's ``JSONResponse``
    for the str, int, bool, None, list and dict bodies the direct routes answer, at a
    fraction of the stdlib encoder's cost on a hot path."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
