"""Schemathesis hook: sign each generated merchant request as merchant-acme would, so the
fuzzing reaches the orders service's validation behind the signature check.

Loaded by ``SCHEMATHESIS_HOOKS`` in test_schemas_fuzzed.py. The body is serialized here,
once, and sent as those exact bytes, since the signature covers the raw body.
"""

from __future__ import annotations

import json
import time
from typing import Any

import schemathesis
from schemathesis.core import NOT_SET

from afflux.orders.signing import sign_call

MERCHANT = "merchant-acme"
SIGNED_PATHS = ("/v1/orders", "/v1/orders:batch", "/v1/refunds", "/v1/leads/{order_id}/confirm")


def raw_body(body: object) -> bytes:
    if body is NOT_SET:  # a case without a body: sign the empty one
        return b""
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.operation.path not in SIGNED_PATHS:
        return
    raw = raw_body(case.body)
    case.body = raw
    case.media_type = "application/octet-stream"
    case.headers = {
        **(case.headers or {}),
        "X-Afflux-Merchant": MERCHANT,
        "X-Afflux-Signature": sign_call(
            "POST", case.formatted_path, raw, f"dev-secret-{MERCHANT}", int(time.time())
        ),
    }
