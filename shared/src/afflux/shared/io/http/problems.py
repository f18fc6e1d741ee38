"""The one error shape of every afflux HTTP API: ``{"detail": [{"field", "reason"}]}``.

A route refuses a request by raising ``Problem``; ``install_problem_handlers`` answers
it, FastAPI's validation errors and Starlette's HTTP errors in that same shape, so a
client reads every 4xx and 5xx the same way whichever service or layer refused it.

Redis out of reach (restarting, loading its AOF, a timeout) while a route reads or writes
it is a 503 with ``Retry-After``, never a 500: nothing the request asked for was done
unless the route said so before, and the client may retry as it does any 503.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from afflux.shared.io.http.media import media_problem
from afflux.shared.io.redis_client import redis_away

log = logging.getLogger(__name__)

# A 503 says "nothing was accepted, retry": one second keeps retries from hammering.
RETRY_AFTER_S = "1"
# What FastAPI answers, as a 400, for a body it could not parse other than a JSON syntax
# error.
BODY_UNPARSED = "There was an error parsing the body"


class Problem(Exception):
    """A request refused with an HTTP status, naming the offending field and why.

    ``headers`` go out with the answer; a 503 without its own headers says
    ``Retry-After: 1``.
    """

    def __init__(
        self,
        status: int,
        field: str | None,
        reason: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {field}: {reason}")
        self.status = status
        self.field = field
        self.reason = reason
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"detail": [self.problem()]}

    def problem(self) -> dict[str, Any]:
        return {"field": self.field, "reason": self.reason}

    def response_headers(self) -> dict[str, str] | None:
        if self.headers is not None:
            return dict(self.headers)
        return {"Retry-After": RETRY_AFTER_S} if self.status == 503 else None


def validation_problem(error: Mapping[str, Any]) -> dict[str, Any]:
    """One FastAPI validation error as {field, reason}. A JSON syntax error's location is
    a character offset, so it names the body instead; ``body`` itself is left out of a
    field's path (the field is the client's, the body is where every field lives), and so
    is the ``query`` or ``path`` a parameter came in: ``limit``, as the routes that read
    their parameters themselves name it, not ``query.limit``."""
    if error.get("type") == "json_invalid":
        return {"field": "body", "reason": f"malformed JSON: {error.get('msg')}"}
    loc = list(error.get("loc", ()))
    if len(loc) > 1 and loc[0] in ("query", "path"):
        loc = loc[1:]
    field = ".".join(str(part) for part in loc if part != "body") or "body"
    if error.get("type") == "extra_forbidden":
        reason = "unknown field"
    else:  # pydantic's "Value error, " says nothing the reason does not
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return {"field": field, "reason": reason}


async def _problem_answer(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.response_headers())


async def _invalid_answer(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [validation_problem(error) for error in exc.errors()]
    return JSONResponse({"detail": detail or [{"field": None, "reason": "invalid request"}]}, 422)


def unparsed_body_reason(cause: BaseException | None) -> str:
    """Why a body FastAPI could not parse was refused, from the parser's own exception:
    it answers every failure but a JSON syntax error with one sentence that names no
    cause (nesting past the parser's recursion limit, a number of thousands of digits)."""
    if isinstance(cause, RecursionError):
        return "malformed JSON: nested too deeply"
    if isinstance(cause, UnicodeDecodeError):
        return "malformed JSON: not UTF-8"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return "malformed JSON: a number has too many digits"
    return f"malformed JSON: {type(cause).__name__ if cause else 'unreadable'}"


async def _http_error_answer(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.detail == BODY_UNPARSED:
        # A compressed body is unparsed JSON too: say what it is (415), not "not UTF-8".
        media = media_problem(
            request.headers.get("content-type"), request.headers.get("content-encoding")
        )
        if media is not None:
            return JSONResponse({"detail": [{"field": media[0], "reason": media[1]}]}, 415)
        # The same 422 naming the body as a JSON syntax error gets.
        reason = unparsed_body_reason(exc.__cause__)
        return JSONResponse({"detail": [{"field": "body", "reason": reason}]}, 422)
    body = {"detail": [{"field": None, "reason": str(exc.detail)}]}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _redis_away_answer(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: redis unavailable: %r", request.method, request.url.path, exc)
    away = Problem(503, None, "redis unavailable, retry")
    return JSONResponse(away.body(), status_code=503, headers=away.response_headers())


async def _redis_reply_answer(request: Request, exc: Exception) -> JSONResponse:
    """Redis answering that it cannot take writes now (at its memory limit, a replica, a
    full disk: ``redis_away``) is a 503 to retry, as Redis out of reach is; any other
    error reply is a 500."""
    if redis_away(exc):
        log.warning("%s %s: redis refusing writes: %r", request.method, request.url.path, exc)
        away = Problem(503, None, "redis cannot take writes now, retry")
        return JSONResponse(away.body(), status_code=503, headers=away.response_headers())
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": [{"field": None, "reason": "internal error"}]}, 500)


def install_problem_handlers(app: FastAPI) -> None:
    """Answer ``Problem``, request validation errors, HTTP errors and Redis out of reach
    in the one shape."""
    app.add_exception_handler(Problem, _problem_answer)
    app.add_exception_handler(RequestValidationError, _invalid_answer)
    app.add_exception_handler(HTTPException, _http_error_answer)
    app.add_exception_handler(RedisConnectionError, _redis_away_answer)
    app.add_exception_handler(RedisTimeoutError, _redis_away_answer)
    app.add_exception_handler(ResponseError, _redis_reply_answer)
