"""The framework-free parts of the API reference every afflux HTTP service serves
(``afflux.shared.io.http.apidocs``): its paths, the problem shape and the Swagger UI
page. Apart so that a process serving them without FastAPI (the attribution worker's
port) does not import FastAPI, Starlette and Redis at start: about 0.4 s of each
start on the development machine, paid again by every restart.
"""

from __future__ import annotations

import html
import importlib.resources
import json
from pathlib import Path
from typing import Any

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
OPENAPI_PATH = "/openapi.json"

# The one error shape of every afflux HTTP API (afflux.shared.io.http.problems).
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ProblemBody",
    "description": "Every 4xx and 5xx answer: each problem names the field and the reason.",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {
                    "field": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "reason": {"type": "string"},
                },
            },
        }
    },
}
PROBLEM_REF = {"$ref": "#/components/schemas/ProblemBody"}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "seconds to wait before sending the same request again",
        "schema": {"type": "string"},
    }
}


def assets_dir() -> Path:
    """The Swagger UI distribution inside the installed ``swagger-ui-py`` wheel."""
    return Path(str(importlib.resources.files("swagger_ui") / "static"))


def problem(description: str, *, retry: bool = False) -> dict[str, Any]:
    """An error answer in the problem shape (a 503 says Retry-After)."""
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": PROBLEM_REF}},
    }
    if retry:
        answer["headers"] = RETRY_AFTER_HEADER
    return answer


def swagger_page(title: str, openapi_url: str = OPENAPI_PATH) -> str:
    """Swagger UI's page, loading its script and style from this service."""
    config = json.dumps({"url": openapi_url, "dom_id": "#swagger-ui", "deepLinking": True})
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script>
const config = {config};
config.presets = [SwaggerUIBundle.presets.apis];
window.ui = SwaggerUIBundle(config);
</script>
</body>
</html>
"""
