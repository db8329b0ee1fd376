"""Cross-cutting HTTP pieces: the browser-history cookie, client addresses, request-size limits, security
headers, HEAD as GET, database-outage answers, download file names and JSON bodies without repeated keys."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import ipaddress
import json
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import UserError

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


@functools.lru_cache
def thread_pool(purpose: str, size: int) -> anyio.CapacityLimiter:
    """``size`` threads of this process for one kind of blocking work (an anyio limiter for
    ``anyio.to_thread.run_sync``), apart from the request threads: the work beyond them waits in the event
    loop, holding no thread."""
    return anyio.CapacityLimiter(size)


def client_address(request: Request) -> str:
    """The client's IP address, as far as it can be trusted: the TCP peer, or, when the peer is one of
    FORWARDED_ALLOW_IPS (our own proxy), the address that proxy saw: the right-most X-Forwarded-For hop
    that is not itself one of those proxies (when every hop is one, the left-most: the chain was written by
    proxies alone). With ``*`` any peer is a proxy, so only the hop it wrote, the right-most, is believed:
    the hops to its left are whatever the client sent, and taking one of them would let every client choose
    its own address (and lock someone else's out of the login).

    Rate limits and the login throttle key on this (through :func:`limit_key`), so a client cannot pick its
    own address by sending a header (`colorlab serve` runs uvicorn with its own proxy-header handling off).
    """
    from backend.config import get_settings

    peer = request.client.host if request.client else "?"
    trusted = _trusted_networks(get_settings().forwarded_allow_ips)
    if trusted == () or not _is_trusted(peer, trusted):
        return peer
    hops = [
        _hop_address(hop) for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")
    ]
    hops = [hop for hop in hops if hop]
    if not hops:
        return peer
    if trusted is None:
        return hops[-1]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0]


def _hop_address(hop: str) -> str:
    """One X-Forwarded-For entry as an address: its port dropped (``1.2.3.4:80``, ``[2001:db8::1]:80``)."""
    hop = hop.strip()[:64]
    if hop.startswith("["):
        return hop[1:].split("]", 1)[0]
    if hop.count(":") == 1:  # IPv4 with a port (an IPv6 address has at least two colons)
        return hop.split(":", 1)[0]
    return hop


def limit_key(address: str) -> str:
    """The key rate limits and the login throttle count a client address under: an IPv6 client by its /64
    (the block one subscriber gets: counting each address would give one client 2^64 budgets), an
    IPv4-mapped IPv6 address as its IPv4 address; anything else as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def client_limit_key(request: Request) -> str:
    """This request's client as rate limits and the login throttle count it (:func:`limit_key`)."""
    return limit_key(client_address(request))


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None  # None: trust any


@functools.lru_cache
def _trusted_networks(setting: str) -> Networks | tuple[()]:
    items = [item.strip() for item in setting.split(",") if item.strip()]
    if "*" in items:
        return None
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _is_trusted(address: str, trusted: Networks | tuple[()]) -> bool:
    if trusted is None:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket's peer (::ffff:10.0.0.2) is the IPv4 proxy listed
    return any(ip in net for net in trusted)


def client_key(cookie_value: str | None) -> str | None:
    """The stored form of a browser's history cookie (hashed: the cookie itself is never stored)."""
    if not cookie_value:
        return None
    return hashlib.sha256(cookie_value.encode()).hexdigest()[:64]


def client_of(request: Request) -> str | None:
    """The hashed id of this browser (set by :class:`ClientCookieMiddleware`)."""
    return getattr(request.state, "client", None)


def content_disposition(filename: str, *, attachment: bool = True) -> str:
    """A Content-Disposition header for any file name: an ASCII fallback plus the UTF-8 name (RFC 6266)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (an HTTPException, so that FastAPI's
    form parsing lets it through as a 413 instead of wrapping it in a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than the {limit:,}-byte limit")


class BodyTimeout(HTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body stalled for more than {seconds:g} s")


class LimitsMiddleware:
    """Refuse request bodies over ``max_body`` bytes (or the path's own limit in ``path_limits``, e.g.
    POST /batches takes many photos at once), by Content-Length at once, else while streaming, and bodies
    that stall for more than ``body_timeout`` seconds between two chunks (408): a slow client must not hold
    a request, and its upload buffer, for ever."""

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        body_timeout: float = 30.0,
        path_limits: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.default_max_body = max_body
        self.body_timeout = body_timeout
        self.path_limits = path_limits or {}

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

        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # later receives wait for a disconnect: no time-out there
                return await receive()
            try:
                async with asyncio.timeout(self.body_timeout):  # unlike wait_for, no task per receive
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.body_timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
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
        except (BodyTooLarge, BodyTimeout) as exc:
            if not started:
                await _json(send, exc.status_code, str(exc.detail))


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
    headers to every response, and to one that sets no caching of its own, ``private, no-cache`` (it may
    differ by the cookie).
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
                if "cache-control" not in headers:
                    # A status, a list or a page differs with the cookie (`owned`, a maker's own fields) and
                    # changes: no shared cache keeps it, and a browser asks again each time
                    headers["cache-control"] = "private, no-cache"
                    headers.add_vary_header("Cookie")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HeadAsGetMiddleware:
    """HEAD answered as GET without the body (RFC 9110 §9.3.2): FastAPI routes declare GET only, so
    `curl -I` on a result or a page was a 405. Headers, Content-Length included, are the GET's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET", HEAD_ONLY: True}, receive, send_headers_only)


HEAD_ONLY = "colorlab.head_only"  # in a request's scope: a HEAD answered as GET, whose body is thrown away


def head_only(request: Request) -> bool:
    """Whether the request is a HEAD answered as GET: a route whose body costs work (a zip, a JPEG made
    from the PNG) answers with the headers alone."""
    return bool(request.scope.get(HEAD_ONLY))


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route answers at ``path`` (Starlette's 405 names only the first route's: GET
    /jobs/{id} hid DELETE /jobs/{id}); HEAD wherever GET is (:class:`HeadAsGetMiddleware`)."""
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        scope: Scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
        for route in app.routes:
            if route.matches(scope)[0] == Match.FULL:
                # a mount (the static files) matches any method; it serves GET and HEAD only
                if not isinstance(route, Mount) or method == "GET":
                    allowed.append(method)
                break
    return [m for method in allowed for m in ((method, "HEAD") if method == "GET" else (method,))]


def install(
    app: FastAPI,
    *,
    max_body: int,
    secure_cookies: bool,
    body_timeout: float = 30.0,
    path_limits: dict[str, int] | None = None,
    inner: Sequence[Callable[[ASGIApp], ASGIApp]] = (),
) -> None:
    """The app's exception handlers for the database and its middleware; ``inner``: middleware classes that
    run inside these (their answers get the security headers and the client cookie)."""

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The route's template, not the path (a job's id is its access token); the driver's own first line
        # (refused, a password, a missing database) says what to mend
        route = getattr(request.scope.get("route"), "path", "?")
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = cause[0][:300] if cause else exc.__class__.__name__
        log.warning("database error on %s %s: %s", request.method, route, reason)
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def server_fault(request: Request, exc: Exception) -> JSONResponse:
        # A bug: still JSON with a `detail`, as every other answer (Starlette logs the traceback)
        return JSONResponse(
            {"detail": "the server failed on this request (an error on its side, logged); try again later"},
            status_code=500,
        )

    @app.exception_handler(DataError)
    async def value_does_not_fit(request: Request, exc: Exception) -> JSONResponse:
        # A value the checks let through that the column cannot hold (PostgreSQL is strict, SQLite is not):
        # the request's, so a 4xx, and a bug to mend, so logged whole.
        log.error("value refused by the database on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": "a value of the request does not fit what the server stores (too long, out of range)"},
            status_code=422,
        )

    @app.exception_handler(PoolTimeout)
    async def database_busy(request: Request, exc: Exception) -> JSONResponse:
        # Only when every connection stayed busy for the pool's whole time-out (30 s): an overload.
        log.warning("no database connection free for %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "the server is overloaded; try again shortly"},
            status_code=503,
            headers={"Retry-After": "10"},
        )

    for middleware in inner:
        app.add_middleware(middleware)
    app.add_middleware(ClientAndHeadersMiddleware, secure_cookies=secure_cookies)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(
        LimitsMiddleware, max_body=max_body, body_timeout=body_timeout, path_limits=path_limits
    )


def unique_keys(what: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A ``json.loads`` object hook that refuses (422) an object repeating a key: JSON allows it and parsers
    keep the last, so which value was meant cannot be known. ``what``: the JSON's name in the message."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if twice := sorted(key for key, n in Counter(key for key, _ in pairs).items() if n > 1):
            raise UserError(
                422, f"{what} holds {', '.join(map(json.dumps, twice))} more than once: send each once"
            )
        return dict(pairs)

    return hook


class UniqueKeysJsonRoute(APIRoute):
    """A route whose JSON body is refused (422, naming the key) when an object in it repeats a key, rather
    than silently taking the last value (a participant's answer must be the one meant)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            body = await request.body()  # kept on the request: the route reads it again, not the socket
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if body and kind.endswith("json"):
                # not JSON, or nested past Python's recursion limit: the route's own parsing answers it
                with contextlib.suppress(ValueError, RecursionError):
                    json.loads(body, object_pairs_hook=unique_keys("the body"))
            return await handle(request)

        return checked
