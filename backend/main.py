"""The FastAPI application factory (`uvicorn backend.main:create_app --factory`)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend import docs, ratelimit, web
from backend.config import get_settings
from backend.errors import UserError
from backend.routes import admin, api, batches, compare, monitoring, pages, study
from backend.static_files import STATIC_DIR, VersionedStaticFiles
from backend.templates import error_page, not_found_page, wants_html

log = logging.getLogger("colorlab")

DESCRIPTION = """
Colorize grayscale photos with feed-forward networks or by exemplar style transfer, and follow the jobs.

Typical use: `POST /colorize` with a photo and a method → `202` with a job id; poll `GET /jobs/{id}` until
`status` is `done`; download `GET /jobs/{id}/result.png`. `GET /methods` lists the methods, their options
and whether each is available on this server.
"""


API_TAGS = [
    {"name": "colorize", "description": "Colorize a photo, follow its job, fetch the results."},
    {"name": "batches", "description": "Many photos at once, results as a ZIP."},
    {"name": "compare", "description": "One photo through several methods side by side."},
    {"name": "study", "description": "The participant side of a user study."},
    {"name": "service", "description": "For load balancers and monitors."},
]


def create_app() -> FastAPI:
    settings = get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # As many threads as the database pool has connections at most (Settings checks the pool).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        yield

    app = FastAPI(
        title="ColorLab",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        openapi_tags=API_TAGS,  # the docs list the groups in this order, whatever the routing order
    )
    # Two images plus form fields: anything larger is refused before it is read.
    web.install(
        app,
        max_body=2 * settings.max_upload_bytes + 1_000_000,
        secure_cookies=settings.secure_cookies,
        body_timeout=settings.body_read_timeout,
        # A batch, and a study's photos (15-50 phone photos are a few hundred MB), take more.
        path_limits={
            path: settings.batch_max_bytes + settings.max_upload_bytes + 1_000_000
            for path in ("/batches", "/admin/studies")
        },
        inner=[ratelimit.UploadRateMiddleware],  # counted before an upload's body is read
    )
    # FastAPI matches a request against the routes in order, each a regular expression (an included router
    # is even matched twice), so the hottest paths come first: a crowd of study participants, then API
    # polling. No two routers share a path prefix, so the order changes nothing else.
    for routes in (study, api, batches, pages, compare, admin, monitoring):
        app.include_router(routes.router)
    if settings.docs_enabled:  # off in production unless API_DOCS=true
        docs.install_docs(app)  # Swagger UI and ReDoc from local files: they work offline
    app.mount("/static", VersionedStaticFiles(directory=STATIC_DIR), name="static")

    documented_as_sent(app)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":  # its loc is a character offset, not a field
                error = (err.get("ctx") or {}).get("error", "")
                offset = err.get("loc", ("body", 0))[-1]
                problems.append(f"the body is not valid JSON ({error} at character {offset})")
                continue
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            message = str(err.get("msg"))
            if err.get("type") == "missing" and not where:
                message = "a JSON body is required (e.g. {})"
            if "UploadFile" in message:  # a file field sent as text (a form not sent as multipart/form-data)
                message = "must be a file, sent as multipart/form-data"
            problems.append(f"{where}: {message}" if where else message)
        detail = "; ".join(problems) or "invalid request"
        if wants_html(request):
            return error_page(request, 422, detail, None)
        return JSONResponse({"detail": detail}, status_code=422)

    # One answer for every refusal: a UserError raised anywhere, or Starlette's own (unknown path, 405, ...).
    @app.exception_handler(UserError)
    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException is one too
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UserError | StarletteHTTPException)
        if exc.status_code == 405 and not isinstance(exc, UserError):
            allowed = ", ".join(web.allowed_methods(app, request.url.path))
            if request.method == "OPTIONS":  # what may be done here (no CORS: same-origin pages only)
                return Response(status_code=204, headers={"Allow": allowed})
            exc = StarletteHTTPException(
                405, f"{request.method} is not allowed here; allowed: {allowed}", headers={"Allow": allowed}
            )
        if exc.status_code == 404 and wants_html(request):
            return not_found_page(request, str(exc.detail))
        if exc.status_code >= 400 and wants_html(request):  # a browser's form post or navigation
            return error_page(request, exc.status_code, str(exc.detail), exc.headers)
        body: dict[str, str] = {"detail": str(exc.detail)}
        if isinstance(exc, UserError) and exc.field:
            body["field"] = exc.field
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.get(
        "/healthz",
        tags=["service"],
        summary="Liveness: the web process answers",
        description='`{"status": "ok"}` while the process serves requests (the database is not asked).',
    )
    async def healthz() -> dict[str, str]:  # async: answers even while every thread is busy
        return {"status": "ok"}

    return app


def documented_as_sent(app: FastAPI) -> None:
    """The schema's 422s as :func:`validation_error` sends them, ``{"detail": "..."}`` (ErrorOut), not
    FastAPI's default list of problems, which no request ever gets."""
    build = app.openapi
    as_sent = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = build()
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                refused = operation.get("responses", {}).get("422")
                if refused is not None and "HTTPValidationError" in json.dumps(refused):
                    refused["description"] = "A parameter or field is not valid: `detail` says which and why."
                    refused["content"] = as_sent
        schemas = spec.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
