"""Browser sessions: ``GET/POST /login``, ``POST /logout`` and ``GET /v1/me``.

The login form takes a key (a creator's or merchant's, or the admin token). A good one
begins a server-side session (Redis) whose id goes out in an HttpOnly, SameSite=Strict
cookie (Secure when the public URL is https); pages read the principal from it through
``PrincipalDep`` and put ``csrf_token(request)`` in every form. The login form itself is
protected by a double-submit token (cookie and hidden field) and an Origin check.
Failed logins are counted per client address (the TCP peer, or behind a proxy of
``AFFLUX_TRUSTED_PROXIES`` the client it names; an IPv6 client by its /64, which one host
can rotate through, as click quality counts it): at the limit, further attempts are
answered 429 with Retry-After until the window ends. docs/portal.md, "Access".
"""

from __future__ import annotations

import html
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from afflux.payouts.errors import ERROR_RESPONSES
from afflux.shared.core import access
from afflux.shared.core.access import Principal
from afflux.shared.core.address_group import address_group
from afflux.shared.io.http.principals import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    AccessConfig,
    AccessStore,
    PrincipalDep,
    check_origin,
    csrf_token,
    current_principal,
    form_fields,
    require_csrf,
)
from afflux.shared.io.http.problems import Problem
from afflux.shared.io.http.state import started_dep, state_dep

router = APIRouter(tags=["session"])
AccessStoreDep = Annotated[AccessStore, Depends(started_dep("access"))]
AccessConfigDep = Annotated[AccessConfig, Depends(state_dep("access_config"))]
_LOGIN_CSRF_TTL_S = 3600
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer makes a form post say Origin: null
    "Cache-Control": "no-store",
}


class Me(BaseModel):
    role: str
    subject: str | None
    key_id: str | None
    csrf_token: str  # for the forms of a session's pages; empty for a bearer request


def login_page(csrf: str, next_path: str | None) -> str:
    """The login form: a key, the double-submit token and where to go next."""
    next_field = (
        f'<input type="hidden" name="next" value="{html.escape(next_path)}">' if next_path else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>afflux: log in</title></head><body><main><h1>Log in</h1>"
        '<form method="post" action="/login">'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{html.escape(csrf)}">{next_field}'
        '<label for="key">API key</label> '
        '<input id="key" name="key" type="password" autocomplete="current-password" required> '
        '<button type="submit">Log in</button></form></main></body></html>'
    )


def _set_cookie(
    response: Response, name: str, value: str, max_age: int, config: AccessConfig
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=config.secure_cookie,
    )


@router.get("/login", response_class=HTMLResponse, summary="the login form (a key)")
async def login_form(
    config: AccessConfigDep, next_: Annotated[str | None, Query(alias="next")] = None
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = HTMLResponse(login_page(token, access.safe_next_path(next_)), headers=_PAGE_HEADERS)
    _set_cookie(response, LOGIN_CSRF_COOKIE, token, _LOGIN_CSRF_TTL_S, config)
    return response


async def _principal_of(store: AccessStore, config: AccessConfig, key: str) -> Principal | None:
    if config.admin_token is not None and access.same_secret(key, config.admin_token):
        return access.ADMIN
    return await store.principal_of_key(key)


@router.post(
    "/login",
    status_code=303,
    response_class=RedirectResponse,
    summary="begin a session with a key (form: key, csrf_token, next)",
    responses={
        **ERROR_RESPONSES,
        403: ERROR_RESPONSES[401] | {"description": "not sent from the login form"},
        429: ERROR_RESPONSES[401] | {"description": "too many failed logins: Retry-After"},
    },
)
async def login(request: Request, store: AccessStoreDep, config: AccessConfigDep) -> Response:
    check_origin(request)
    fields = await form_fields(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not access.same_secret(fields.get(CSRF_FIELD, ""), expected):
        raise Problem(403, CSRF_FIELD, "missing or wrong CSRF token: reload the login page")
    address = address_group(config.proxies.of_request(request))
    before, retry_after = await store.claim_attempt(address, config.throttle.window_s)
    if config.throttle.blocked(before):
        await store.forgive_attempt(address)  # refused unchecked: it failed nothing
        raise Problem(
            429,
            "key",
            "too many failed logins: wait and try again",
            {"Retry-After": str(retry_after)},
        )
    key = fields.get("key", "").strip()
    principal = await _principal_of(store, config, key) if key else None
    if principal is None:
        raise Problem(401, "key", "wrong, rotated or revoked key")  # the claim stays counted
    await store.forgive_attempt(address)
    session_id, _ = await store.begin_session(principal, key, config.session_ttl_s)
    target = access.safe_next_path(fields.get("next")) or access.landing_path(principal)
    response = RedirectResponse(target, status_code=303)
    _set_cookie(response, SESSION_COOKIE, session_id, config.session_ttl_s, config)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post(
    "/logout",
    status_code=303,
    response_class=RedirectResponse,
    summary="end the session (form: csrf_token)",
    responses={
        **ERROR_RESPONSES,
        403: ERROR_RESPONSES[401] | {"description": "a session without its CSRF token"},
    },
)
async def logout(request: Request, store: AccessStoreDep, config: AccessConfigDep) -> Response:
    try:
        await require_csrf(request, await current_principal(request))
    except Problem as problem:
        # A session that had ended already (its time-to-live, a rotated key) has nothing
        # to end and nothing to forge: it answered 401 and left its cookie in the browser.
        # Only with its cookie sent: a form posted from another site arrives without the
        # (SameSite=Strict) cookie, and must not clear a live one.
        if problem.status != 401 or not request.cookies.get(SESSION_COOKIE):
            raise
    else:
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            await store.end_session(session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=config.secure_cookie
    )
    return response


@router.get("/v1/me", response_model=Me, responses=ERROR_RESPONSES)
async def me(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Who the key or session is: role, subject, and the CSRF token for forms."""
    return {
        "role": principal.role,
        "subject": principal.subject,
        "key_id": principal.key_id,
        "csrf_token": csrf_token(request),
    }
