"""Portal keys on the whole stack as ``afflux up`` runs it: ``afflux keys`` issues a
merchant's and a creator's key, each reads only its own (another merchant's campaign
is the 404 of an unknown one), a browser logs in with a key into a session, and a
rotated or revoked key stops working at once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import httpx
import pytest

from afflux.cli.stack import Stack
from afflux.shared.io.http import tls as oneshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_TOKEN = "keys-stack-admin-token"
TERMS_YAML = """
campaigns:
  - effective_from: 0
    terms:
      campaign_id: keys-shop
      merchant_id: keys-merchant
      currency: EUR
      allowed_domains: [shop.example.com]
      plan:
        sale: {rate: {percent: "10"}}
  - effective_from: 0
    terms:
      campaign_id: else-shop
      merchant_id: else-merchant
      currency: EUR
      allowed_domains: [else.example.com]
      plan:
        sale: {rate: {percent: "10"}}
"""


def afflux_keys(stack: Stack, *args: str) -> Any:
    env = {
        **os.environ,
        "AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN,
        "AFFLUX_PAYOUTS_URL": stack.url("payouts"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "afflux.cli", "keys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_a_merchant_key_reads_its_campaigns_only_until_rotated_and_revoked(
    stack: Stack,
) -> None:
    payouts = stack.url("payouts")
    issued = afflux_keys(stack, "issue", "--merchant", "keys-merchant")
    assert issued["key"].startswith("afx_mk_")
    mine = oneshot.get(f"{payouts}/v1/kpis/campaigns/keys-shop", headers=bearer(issued["key"]))
    assert mine.status_code == 200, mine.text
    other = oneshot.get(f"{payouts}/v1/kpis/campaigns/else-shop", headers=bearer(issued["key"]))
    unknown = oneshot.get(f"{payouts}/v1/kpis/campaigns/nope-shop", headers=bearer(issued["key"]))
    assert other.status_code == unknown.status_code == 404
    assert other.text.replace("else-shop", "nope-shop") == unknown.text

    rotated = afflux_keys(stack, "rotate", issued["key_id"])
    old = oneshot.get(f"{payouts}/v1/kpis/campaigns/keys-shop", headers=bearer(issued["key"]))
    assert old.status_code == 401
    new = oneshot.get(f"{payouts}/v1/kpis/campaigns/keys-shop", headers=bearer(rotated["key"]))
    assert new.status_code == 200
    afflux_keys(stack, "revoke", issued["key_id"])
    gone = oneshot.get(f"{payouts}/v1/kpis/campaigns/keys-shop", headers=bearer(rotated["key"]))
    assert gone.status_code == 401
    [listed] = afflux_keys(stack, "list", "--merchant", "keys-merchant")["keys"]
    assert listed["revoked_at"] is not None
    assert rotated["key"] not in json.dumps(listed)


def test_a_creator_logs_in_with_its_key_and_reads_as_itself(stack: Stack) -> None:
    payouts = stack.url("payouts")
    key = afflux_keys(stack, "issue", "--creator", "keys-ana")["key"]
    with httpx.Client(base_url=payouts) as browser:
        form = browser.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert match
        login = browser.post(
            "/login",
            data={"key": key, "csrf_token": match.group(1), "next": "/v1/me"},
            headers={"origin": payouts},
        )
        assert login.status_code == 303, login.text
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        me = browser.get("/v1/me").json()
        assert (me["role"], me["subject"]) == ("creator", "keys-ana")
        assert browser.get("/v1/kpis/campaigns/keys-shop").status_code == 404
