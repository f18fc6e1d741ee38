"""The payouts API's error answers as the OpenAPI schema documents them.

Every 4xx/5xx has the shared shape (afflux.shared.io.http.problems); these models only
describe it, per status, for the routers that include them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ProblemItem(BaseModel):
    field: str | None
    reason: str


class ProblemBody(BaseModel):
    """The error shape of every 4xx/5xx answer of the payouts API."""

    detail: list[ProblemItem]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemBody, "description": what}
    for status, what in (
        (
            400,
            "a credential in the query string (send Authorization: Bearer), or a JSON body"
            " naming a field twice",
        ),
        (401, "missing, wrong, rotated or revoked credential (admin token, key or session)"),
        (404, "unknown creator or campaign, or one the credential may not read"),
        (
            415,
            "a request body that is not plain JSON (a Content-Type other than"
            " application/json, or a Content-Encoding): names the header",
        ),
        (
            422,
            "malformed period, as_of, cursor or body, or a period of a cadence the campaign"
            " was never paid by: the field and the reason",
        ),
        (503, "starting: campaign terms or the ledger not ready yet"),
    )
}

PROBLEM_REF = {"$ref": "#/components/schemas/ProblemBody"}

# Report pages answer HTML, their errors JSON: say so, or clients expect HTML errors.
JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {**spec, "content": {"application/json": {"schema": PROBLEM_REF}}}
    for status, spec in ERROR_RESPONSES.items()
    if status in (404, 422)
}
