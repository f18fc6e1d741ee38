"""A request validation error names the client's field: a query or path parameter by its
own name (``limit``), as the routes that read their parameters themselves name it; it
was ``query.limit`` on the routes FastAPI validated."""

from __future__ import annotations

from typing import Any

import pytest

from afflux.shared.io.http.problems import validation_problem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("error", "field"),
    [
        ({"loc": ("query", "limit"), "msg": "not an int"}, "limit"),
        ({"loc": ("path", "endpoint_id"), "msg": "too long"}, "endpoint_id"),
        ({"loc": ("body", "items", 0, "sku"), "msg": "missing"}, "items.0.sku"),
        ({"loc": ("body",), "msg": "missing"}, "body"),
        ({"loc": ("header", "x-afflux-merchant"), "msg": "missing"}, "header.x-afflux-merchant"),
        ({"loc": ("query",), "msg": "odd"}, "query"),
        ({"type": "json_invalid", "loc": ("body", 12), "msg": "bad"}, "body"),
    ],
)
def test_a_validation_error_names_the_clients_field(error: dict[str, Any], field: str) -> None:
    assert validation_problem(error)["field"] == field
