"""Request bodies every afflux API refuses before a route sees them.

A JSON body that names a field twice is read differently by different parsers (most
keep the last value, some the first): the client's systems and afflux could act on
different values from the same bytes. FastAPI keeps the last one silently, so every
JSON API whose routes FastAPI reads the body for installs ``refuse_repeated_names`` as
an app-wide dependency; it runs after FastAPI read the body (``Request.body`` is cached)
and before the route does anything. The orders service does not: each of its routes
reads its own body under a byte limit, after the signature or admin token, and parses
it with ``afflux.orders.ingest.parse``, which refuses a repeated name itself.
"""

from __future__ import annotations

from fastapi import Request

from afflux.shared.core.duplicate_keys import first_duplicate_key, repeated_name_reason
from afflux.shared.io.http.problems import Problem

_WITH_BODY = frozenset(("POST", "PUT", "PATCH"))


async def refuse_repeated_names(request: Request) -> None:
    """400 ``body`` for a JSON body (or one without a content type, which FastAPI reads
    as JSON) naming a field twice in one object."""
    if request.method not in _WITH_BODY:
        return
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type and not (content_type == "application/json" or content_type.endswith("+json")):
        return
    body = await request.body()
    if not body:
        return
    duplicate = first_duplicate_key(body)
    if duplicate is not None:
        raise Problem(400, "body", repeated_name_reason(duplicate))
