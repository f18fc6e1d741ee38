"""The one error shape of the orders API: ``{"detail": [{"field": ..., "reason": ...}]}``,
the same as every afflux HTTP API."""

from __future__ import annotations

from pydantic import ValidationError

from afflux.shared.io.http.problems import Problem


class Rejected(Problem):
    """A request refused with an HTTP status, naming the offending field and why
    (answered by the shared problem handlers; a 503 says ``Retry-After: 1``)."""


class Unavailable(Rejected):
    """The broker or Redis could not take the request now: retry. Nothing was accepted,
    except when the broker took a produce without answering in time: then the reason says
    the same request tells whether it was recorded."""

    def __init__(self, reason: str, *, maybe_stored: bool = False) -> None:
        super().__init__(503, None, reason)
        # A produce the broker took and did not answer: the record may be on the topic.
        self.maybe_stored = maybe_stored


def from_validation(exc: ValidationError, prefix: str = "") -> Rejected:
    """The first problem of a pydantic error as a Rejected (400 for bad JSON, else 422)."""
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        detail = first.get("ctx", {}).get("error", first["msg"])
        return Rejected(400, "body", f"malformed JSON: {detail}")
    location = ".".join(str(part) for part in first["loc"])
    field = ".".join(p for p in (prefix, location) if p) or "body"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "model_type":
        message = "expected a JSON object"
    return Rejected(422, field, message)
