"""Researcher login for /admin: a password from settings kept only as a scrypt hash, compared in constant
time; a signed, expiring session cookie (itsdangerous); a CSRF token bound to the session for every form.

``ADMIN_PASSWORD`` may be plain text (hashed once per process, the plain text is not kept) or a hash made by
``colorlab study hash-password`` (``scrypt$...``). A session is valid for ``ADMIN_SESSION_HOURS`` and ends
when the password changes (the cookie carries a fingerprint of the hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from backend.config import Settings, get_settings

log = logging.getLogger("colorlab.auth")
SESSION_COOKIE = "colorlab_admin"
LOGIN_CSRF_COOKIE = "colorlab_login_csrf"
DEV_PASSWORD = "admin"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
LOGIN_FAILURES_ALLOWED = 10  # per client address, per LOGIN_WINDOW seconds
LOGIN_WINDOW = 300.0


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.urlsafe_b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@lru_cache
def _stored_hash(configured: str, environment: str) -> str:
    if configured.startswith("scrypt$"):
        return configured
    if not configured:
        if environment == "production":  # Settings refuses this already; never fall back in production
            raise RuntimeError("ADMIN_PASSWORD is not set")
        log.warning("ADMIN_PASSWORD is not set: the /admin password is %r (development only)", DEV_PASSWORD)
        configured = DEV_PASSWORD
    return hash_password(configured)


def admin_hash(settings: Settings) -> str:
    return _stored_hash(settings.admin_password.get_secret_value(), settings.environment)


_DEV_SECRET = secrets.token_urlsafe(32)


def secret_key(settings: Settings) -> str:
    key = settings.secret_key.get_secret_value()
    if key:
        return key
    if settings.environment == "production":
        raise RuntimeError("SECRET_KEY is not set")
    return _DEV_SECRET


def serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(settings), salt=f"colorlab.{purpose}")


def _fingerprint(settings: Settings) -> str:
    return hashlib.sha256(admin_hash(settings).encode()).hexdigest()[:16]


def secure_cookies(settings: Settings) -> bool:
    return settings.public_url.startswith("https")


@dataclass(frozen=True)
class AdminSession:
    csrf: str


def read_session(request: Request, settings: Settings) -> AdminSession | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw or len(raw) > 1000:
        return None
    try:
        data = serializer(settings, "admin-session").loads(
            raw, max_age=int(settings.admin_session_hours * 3600)
        )
    except BadSignature:
        return None
    if (
        not isinstance(data, dict)
        or data.get("v") != _fingerprint(settings)
        or not isinstance(data.get("csrf"), str)
    ):
        return None
    return AdminSession(csrf=data["csrf"])


def start_session(response: Response, settings: Settings) -> AdminSession:
    session = AdminSession(csrf=secrets.token_urlsafe(24))
    value = serializer(settings, "admin-session").dumps({"v": _fingerprint(settings), "csrf": session.csrf})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(settings.admin_session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=secure_cookies(settings),
        path="/admin",
    )
    return session


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/admin")


def login_csrf(request: Request, settings: Settings) -> tuple[str, str | None]:
    """The login form's CSRF token (double submit: a signed cookie and the same value in the form), and the
    cookie value to set when the browser has no valid one yet."""
    ser = serializer(settings, "login-csrf")
    raw = request.cookies.get(LOGIN_CSRF_COOKIE)
    if raw:
        try:
            return str(ser.loads(raw, max_age=3600)), None
        except BadSignature:
            pass
    token = secrets.token_urlsafe(24)
    return token, ser.dumps(token)


def set_login_csrf_cookie(response: Response, settings: Settings, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(settings),
        path="/admin",
    )


def check_login_csrf(request: Request, settings: Settings, token: str | None) -> None:
    raw = request.cookies.get(LOGIN_CSRF_COOKIE)
    try:
        expected = str(serializer(settings, "login-csrf").loads(raw or "", max_age=3600))
    except BadSignature:
        expected = ""
    if not expected or not token or not hmac.compare_digest(expected, token):
        raise HTTPException(403, "the form has expired or its CSRF token is invalid: reload the login page")


class LoginThrottle:
    """Failed logins per client address within a sliding window (per process)."""

    def __init__(self, allowed: int = LOGIN_FAILURES_ALLOWED, window: float = LOGIN_WINDOW) -> None:
        self.allowed, self.window = allowed, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] < now - self.window:
            q.popleft()
        return q

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.allowed

    def failed(self, key: str) -> None:
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            self._recent(key, time.monotonic()).append(time.monotonic())


THROTTLE = LoginThrottle()


def check_password(password: str, settings: Settings) -> bool:
    return verify_password(password, admin_hash(settings))


def require_admin(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> AdminSession:
    """Dependency: the researcher's session, or 401 (JSON) / a redirect to the login page (browsers, GET)."""
    session = read_session(request, settings)
    if session is not None:
        return session
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")
        raise HTTPException(303, "log in first", headers={"Location": f"/admin/login?next={target}"})
    raise HTTPException(401, "log in at /admin/login first")


def check_csrf(admin: AdminSession, token: str | None) -> None:
    if not token or not hmac.compare_digest(admin.csrf, token):
        raise HTTPException(403, "invalid or missing CSRF token: reload the page and try again")
