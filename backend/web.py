"""Cross-cutting HTTP pieces: the browser-history cookie, request-size limits, security headers, errors."""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.jobs import client_key

log = logging.getLogger("colorlab.web")
CLIENT_COOKIE = "colorlab_client"
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
# /docs and /redoc start Swagger UI / ReDoc (served from this server) with an inline script; ReDoc runs a
# worker from a blob. No other host is allowed.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; frame-ancestors 'none'; object-src 'none'"
)


def client_of(request: Request) -> str | None:
    """The hashed id of this browser (set by :class:`ClientCookieMiddleware`)."""
    return getattr(request.state, "client", None)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (an HTTPException, so that FastAPI's
    form parsing lets it through as a 413 instead of wrapping it in a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than the {limit:,}-byte limit")


class LimitsMiddleware:
    """Refuse request bodies over ``max_body`` bytes: by Content-Length at once, else while streaming."""

    def __init__(self, app: ASGIApp, max_body: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_max_body = max_body
        self.path_limits = path_limits or {}  # e.g. POST /batches takes many photos at once

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_body = self.path_limits.get(scope["path"], self.default_max_body)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > max_body
            except ValueError:
                await _json(send, 400, "invalid Content-Length header")
                return
            if too_big:
                await _json(send, 413, f"request body larger than the {max_body:,}-byte limit")
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise BodyTooLarge(max_body)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _json(send, 413, f"request body larger than the {max_body:,}-byte limit")


async def _json(send: Send, status: int, detail: str) -> None:
    body = JSONResponse({"detail": detail}).body
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ClientAndHeadersMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: exceptions raised while the body streams must pass untouched).

    Identifies the browser by a random cookie (only its hash is used and stored) and adds the security
    headers to every response.
    """

    def __init__(self, app: ASGIApp, secure_cookies: bool) -> None:
        self.app = app
        self.secure_cookies = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers") or []).get(b"cookie", b"").decode("latin-1")
        cookie = cookie_parser(raw).get(CLIENT_COOKIE) if raw else None
        new_cookie = None
        if not cookie or len(cookie) > 64:
            cookie = new_cookie = secrets.token_urlsafe(24)
        scope.setdefault("state", {})["client"] = client_key(cookie)
        csp = DOCS_CSP if scope["path"] in ("/docs", "/redoc") else CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if new_cookie:
                    secure = "; Secure" if self.secure_cookies else ""
                    headers.append(
                        "set-cookie",
                        f"{CLIENT_COOKIE}={new_cookie}; Max-Age={365 * 86400}; Path=/; "
                        f"HttpOnly; SameSite=Lax{secure}",
                    )
                for name, value in (
                    ("content-security-policy", csp),
                    ("x-content-type-options", "nosniff"),
                    ("x-frame-options", "DENY"),
                    ("referrer-policy", "same-origin"),
                ):
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(
    app: FastAPI, *, max_body: int, secure_cookies: bool, path_limits: dict[str, int] | None = None
) -> None:
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database error on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    app.add_middleware(ClientAndHeadersMiddleware, secure_cookies=secure_cookies)  # type: ignore[arg-type]
    app.add_middleware(LimitsMiddleware, max_body=max_body, path_limits=path_limits)  # type: ignore[arg-type]
