"""JSON request bodies every afflux API refuses: a body that is not plain JSON (415 naming
``Content-Type`` or ``Content-Encoding``, ``media_problem``), and a name given twice in
one object.

A JSON body that names a field twice is read differently by different parsers (most
keep the last value, some the first): the client's systems and afflux could act on
different values from the same bytes. FastAPI keeps the last one silently, so every
route whose JSON body FastAPI reads into a model names the check after its credential
check, in its decorator: ``dependencies=[NAMES_ONCE_AFTER_ADMIN]`` behind the admin
token, ``[NAMES_ONCE_AFTER_CSRF]`` behind a key, the admin token or a session. A caller
without credentials is answered 401 by the credential check before this one looks at
its body; an authenticated caller gets the 400 ``body`` naming the field before the
route does anything.

The check is no app-wide dependency: those run before every route's own, the
credential check included, so one answered an unauthenticated caller 400 instead of
401 and read the whole body of a route that reads its own only after the credentials
(the portal's forms), or reads none. The orders service's routes all read their own
body under a byte limit and parse it with ``afflux.orders.ingest.parse``, which refuses
a repeated name itself.
"""

# No ``from __future__ import annotations``: FastAPI reads the annotations of
# ``refuse_after_gate`` at run time, and a string one could not name the closure's ``gate``
# (FastAPI took the parameter for a query parameter).
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from afflux.shared.core.duplicate_keys import first_duplicate_key, repeated_name_reason
from afflux.shared.io.http.admin import require_admin
from afflux.shared.io.http.media import media_problem
from afflux.shared.io.http.principals import require_csrf
from afflux.shared.io.http.problems import Problem

_WITH_BODY = frozenset(("POST", "PUT", "PATCH"))


async def refuse_repeated_names(request: Request) -> None:
    """415 for a body that is not JSON (``media_problem``); 400 ``body`` for a JSON body
    (or one without a content type, which FastAPI reads as JSON) naming a field twice in
    one object."""
    if request.method not in _WITH_BODY:
        return
    body = await request.body()
    if not body:
        return
    problem = media_problem(
        request.headers.get("content-type"), request.headers.get("content-encoding")
    )
    if problem is not None:
        raise Problem(415, *problem)
    duplicate = first_duplicate_key(body)
    if duplicate is not None:
        raise Problem(400, "body", repeated_name_reason(duplicate))


def refuse_repeated_names_after(gate: Callable[..., Any]) -> Callable[..., Awaitable[None]]:
    """``refuse_repeated_names`` as a dependency that needs ``gate`` (a credential check)
    first: FastAPI solves ``gate`` before it, once per request (the route's own use of the
    same ``gate`` is answered from FastAPI's cache)."""

    async def refuse_after_gate(request: Request, _: Annotated[Any, Depends(gate)]) -> None:
        await refuse_repeated_names(request)

    return refuse_after_gate


# For a route's decorator: ``dependencies=[NAMES_ONCE_AFTER_ADMIN]``.
NAMES_ONCE_AFTER_ADMIN = Depends(refuse_repeated_names_after(require_admin))
NAMES_ONCE_AFTER_CSRF = Depends(refuse_repeated_names_after(require_csrf))
