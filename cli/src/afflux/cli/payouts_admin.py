"""One call of the payouts service's admin API from a CLI command (``afflux keys``,
``afflux webhooks``): the service's URL, the admin token, and the errors printed the
same way for every command."""

from __future__ import annotations

import os
import sys
from typing import Any

import httpx


def base_url(given: str | None) -> str:
    """``--url``, else AFFLUX_PAYOUTS_URL, else the local payouts port."""
    if given:
        return given.rstrip("/")
    if os.environ.get("AFFLUX_PAYOUTS_URL"):
        return os.environ["AFFLUX_PAYOUTS_URL"].rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('AFFLUX_PAYOUTS_PORT', '8003')}"


def call(
    command: str,
    url: str | None,
    request: tuple[str, str, dict[str, Any] | None, dict[str, Any]],
    timeout: float = 30.0,
) -> httpx.Response | int:
    """The service's answer, or the exit code after saying on stderr what went wrong: 2
    without AFFLUX_ADMIN_TOKEN, 1 when the call fails or answers 4xx/5xx."""
    token = os.environ.get("AFFLUX_ADMIN_TOKEN", "")
    if not token:
        print(f"afflux {command}: set AFFLUX_ADMIN_TOKEN (afflux up prints it)", file=sys.stderr)
        return 2
    method, path, body, query = request
    try:
        answer = httpx.request(
            method,
            base_url(url) + path,
            json=body,
            params=query,
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        print(f"afflux {command}: {exc}", file=sys.stderr)
        return 1
    if answer.status_code >= 400:
        print(f"afflux {command}: HTTP {answer.status_code}: {answer.text}", file=sys.stderr)
        return 1
    return answer
