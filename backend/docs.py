"""Interactive API docs served from this server: Swagger UI at /docs, ReDoc at /redoc.

The JavaScript and CSS come from the pinned PyPI package ``fastapi-offline`` (its ``static/`` folder), so
the docs work without internet access (FastAPI's defaults load them from a CDN).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/static-docs"


# ReDoc's sidebar shows a "by Redocly" logo from their CDN: served from here instead (offline, and no request
# to a third party).
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@lru_cache(maxsize=1)
def _redoc_js() -> bytes:
    return (ASSETS / "redoc.standalone.js").read_bytes().replace(REDOC_CDN_LOGO, b"/static/logo.svg")


def install_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Add the docs pages and their assets (create the app with ``docs_url=None, redoc_url=None``)."""

    @app.get(f"{ASSETS_URL}/redoc.standalone.js", include_in_schema=False)
    def redoc_js() -> Response:
        return Response(_redoc_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="static-docs")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _in_english(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} · API docs",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url="/static/logo.svg",
            )
        )

    @app.get(redoc_url, include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _in_english(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} · API reference",
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url="/static/logo.svg",
                with_google_fonts=False,
            )
        )


def _in_english(page: HTMLResponse) -> HTMLResponse:
    """FastAPI's docs page with its language named (screen readers pick their voice by it)."""
    html = bytes(page.body).replace(b"<html>", b'<html lang="en">', 1)
    return HTMLResponse(html, status_code=page.status_code)
