"""The API reference every afflux HTTP service serves: ``/openapi.json`` and ``/docs``.

``/docs`` is Swagger UI from the files the ``swagger-ui-py`` wheel ships, served by the
service itself under ``/docs/assets/``: the page renders on a machine without internet.
Routes outside FastAPI's schema (direct routes, the click redirect) are described by
hand-written OpenAPI path items merged into the generated document by
``install_api_docs``; their component schemas come from the same pydantic models the
routes parse with (``component_schemas``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from afflux.shared.io.http.admin import require_admin

# Re-exported: the services import the reference's framework-free parts from here too.
from afflux.shared.io.http.apidocs_pages import ASSETS_PATH as ASSETS_PATH
from afflux.shared.io.http.apidocs_pages import DOCS_PATH as DOCS_PATH
from afflux.shared.io.http.apidocs_pages import OPENAPI_PATH as OPENAPI_PATH
from afflux.shared.io.http.apidocs_pages import PROBLEM_REF as PROBLEM_REF
from afflux.shared.io.http.apidocs_pages import PROBLEM_SCHEMA as PROBLEM_SCHEMA
from afflux.shared.io.http.apidocs_pages import RETRY_AFTER_HEADER as RETRY_AFTER_HEADER
from afflux.shared.io.http.apidocs_pages import assets_dir as assets_dir
from afflux.shared.io.http.apidocs_pages import problem as problem
from afflux.shared.io.http.apidocs_pages import swagger_page as swagger_page

# FastAPI's own documentation routes, which load Swagger UI and ReDoc from a CDN.
_CDN_ROUTES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
REF_TEMPLATE = "#/components/schemas/{model}"

PathItems = Mapping[str, Mapping[str, Any]]


def component_schemas(models: Sequence[type[BaseModel]]) -> dict[str, Any]:
    """The JSON schemas of ``models`` (and every model they use) as OpenAPI components."""
    _, document = models_json_schema(
        [(model, "validation") for model in models], ref_template=REF_TEMPLATE
    )
    return dict(document.get("$defs", {}))


def merge_openapi(
    document: dict[str, Any], paths: PathItems, schemas: Mapping[str, Any]
) -> dict[str, Any]:
    """``document`` with the hand-written ``paths`` and ``schemas`` (and ProblemBody)
    added; a generated path item of the same path keeps its own operations."""
    merged_paths: dict[str, Any] = {path: dict(item) for path, item in paths.items()}
    for path, item in document.get("paths", {}).items():
        merged_paths[path] = {**merged_paths.get(path, {}), **item}
    document["paths"] = merged_paths
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in {"ProblemBody": PROBLEM_SCHEMA, **schemas}.items():
        components.setdefault(name, schema)
    return document


def _dependency_calls(route: Any) -> set[Any]:
    calls: set[Any] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if dependant.call is not None:
            calls.add(dependant.call)
        pending.extend(dependant.dependencies)
    return calls


def _complete_operation(operation: dict[str, Any], calls: set[Any]) -> None:
    """The refusals FastAPI cannot see: its 422 is answered in the problem shape, the admin
    token's 401, and the 503 of a dependency that waits for start-up."""
    answers = operation.setdefault("responses", {})
    if "422" in answers:
        answers["422"] = problem(answers["422"].get("description") or "invalid request")
    if require_admin in calls:
        answers.setdefault("401", problem("missing or wrong admin token"))
        operation.setdefault("security", [{"AdminToken": []}])
    if any(getattr(call, "__qualname__", "").startswith("started_dep.") for call in calls):
        answers.setdefault("503", problem("starting: retry", retry=True))


def complete_generated(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (FastAPI's) with every route's admin, start-up and validation errors."""
    for route in iter_route_contexts(app.routes):  # included routers' routes too
        if not (isinstance(route.original_route, APIRoute) and route.include_in_schema):
            continue
        item = document.get("paths", {}).get(route.path_format, {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is not None:
                _complete_operation(operation, _dependency_calls(route))
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes.setdefault(
        "AdminToken",
        {"type": "http", "scheme": "bearer", "description": "AFFLUX_ADMIN_TOKEN"},
    )
    document["components"].get("schemas", {}).pop("HTTPValidationError", None)
    document["components"].get("schemas", {}).pop("ValidationError", None)
    return document


def install_api_docs(
    app: FastAPI, *, paths: PathItems | None = None, schemas: Mapping[str, Any] | None = None
) -> None:
    """Serve ``/docs`` from the package's Swagger UI files (in place of FastAPI's CDN pages)
    and merge the hand-written ``paths`` into ``/openapi.json``."""
    kept: list[BaseRoute] = [
        route
        for route in app.router.routes
        if not (isinstance(route, Route) and route.path in _CDN_ROUTES)
    ]
    page = swagger_page(f"{app.title} API")

    async def docs(_: Request) -> HTMLResponse:
        return HTMLResponse(page)

    kept.append(Route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False))
    kept.append(Mount(ASSETS_PATH, app=StaticFiles(directory=assets_dir()), name="docs-assets"))
    app.router.routes[:] = kept
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            generated = complete_generated(app, generate())
            app.openapi_schema = merge_openapi(generated, paths or {}, schemas or {})
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
