"""What a JSON API takes as a body: JSON, uncompressed (pure; every service's body
checks and the shared answer to a body FastAPI could not parse use it)."""

from __future__ import annotations


def media_problem(content_type: str | None, content_encoding: str | None) -> tuple[str, str] | None:
    """(header, reason) for a JSON API's body sent as something else: a declared media
    type other than JSON (``text/plain`` was parsed as JSON by one service and answered
    "Input should be a valid dictionary" by the others), or a compressed body (answered
    "malformed JSON"). No content type is taken as JSON, as FastAPI takes it."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media and not (media == "application/json" or media.endswith("+json")):
        return (
            "Content-Type",
            f"{media[:100]!r} is not accepted: send the body as JSON with"
            " Content-Type: application/json",
        )
    encoding = (content_encoding or "").strip().lower()
    if encoding and encoding != "identity":
        return (
            "Content-Encoding",
            f"{encoding[:100]!r} is not accepted: send the body uncompressed",
        )
    return None
