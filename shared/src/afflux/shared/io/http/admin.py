"""The admin token check: ``Authorization: Bearer <AFFLUX_ADMIN_TOKEN>``.

Routes say they need it with ``AdminDep`` in their signature; the token is read
from the settings the app was built with (``app.state.settings``).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from afflux.shared.io.http.principals import refuse_credential_params
from afflux.shared.io.http.problems import Problem
from afflux.shared.settings import CommonSettings

# RFC 9110: a 401 names the scheme that would be accepted.
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def check_admin_token(expected: str | None, authorization: str) -> None:
    """Raise a 401 Problem unless ``authorization`` is ``Bearer <expected>``."""
    if not authorization:
        raise Problem(
            401, "Authorization", "missing: use Authorization: Bearer <admin token>", _CHALLENGE
        )
    scheme, _, token = authorization.partition(" ")
    if (
        expected is None
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(token.strip().encode(), expected.encode())
    ):
        raise Problem(401, "Authorization", "wrong admin token", _CHALLENGE)


async def require_admin(request: Request) -> None:
    """The dependency behind ``AdminDep`` (async: no thread-pool hop per request);
    ``refuse_credential_params`` first."""
    refuse_credential_params(request)
    settings: CommonSettings = request.app.state.settings
    check_admin_token(settings.admin_token_value(), request.headers.get("authorization", ""))


AdminDep = Annotated[None, Depends(require_admin)]
