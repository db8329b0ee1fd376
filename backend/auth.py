"""Researcher login for /admin: a password from settings kept only as a scrypt hash, compared in constant
time; a signed, expiring session cookie (itsdangerous) naming a session stored in the database (logout revokes
it); a CSRF token bound to the session for every form; login attempts counted per client address in the
database (shared by every web process).

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
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import case, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from backend.config import Settings, development_secret
from backend.db import session_scope
from backend.errors import UserError
from backend.models import utcnow
from backend.study.models import AdminSessionRow, LoginThrottle

log = logging.getLogger("colorlab.auth")
SESSION_COOKIE = "colorlab_admin"
LOGIN_CSRF_COOKIE = "colorlab_login_csrf"
DEV_PASSWORD = "admin"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
LOGIN_FAILURES_ALLOWED = 10  # attempts per client address per LOGIN_WINDOW seconds (a success resets)
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


@lru_cache
def _dev_secret(data_dir: str) -> str:
    return development_secret(Path(data_dir).resolve())  # resolved once: it stats every path component


def secret_key(settings: Settings) -> str:
    key = settings.secret_key.get_secret_value()
    if key:
        return key
    if settings.environment == "production":
        raise RuntimeError("SECRET_KEY is not set")
    return _dev_secret(str(settings.data_dir))


def serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return _serializer(secret_key(settings), purpose)


@lru_cache(maxsize=32)
def _serializer(key: str, purpose: str) -> URLSafeTimedSerializer:
    # Built once per key and purpose: every participant request reads its signed cookie, and building a
    # serializer (key derivation, signer objects) cost more than checking the signature.
    return URLSafeTimedSerializer(key, salt=f"colorlab.{purpose}")


def _fingerprint(settings: Settings) -> str:
    return hashlib.sha256(admin_hash(settings).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AdminSession:
    id: str  # the stored session's key (sha256 of the cookie's token)
    csrf: str


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_session(request: Request, settings: Settings) -> AdminSession | None:
    """The researcher's session: a signed cookie naming a stored session that is neither expired nor revoked
    (logging out revokes it server-side, so a copied cookie stops working too)."""
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
        or not isinstance(data.get("t"), str)
    ):
        return None
    key = _token_key(data["t"])
    with session_scope() as db:
        row = db.get(AdminSessionRow, key)
        if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
            return None
        return AdminSession(id=key, csrf=row.csrf)


def start_session(response: Response, settings: Settings) -> AdminSession:
    token = secrets.token_urlsafe(32)
    session = AdminSession(id=_token_key(token), csrf=secrets.token_urlsafe(24))
    now = utcnow()
    with session_scope() as db:
        db.execute(delete(AdminSessionRow).where(AdminSessionRow.expires_at < now))  # keep the table small
        db.add(
            AdminSessionRow(
                id=session.id,
                csrf=session.csrf,
                created_at=now,
                expires_at=now + timedelta(hours=settings.admin_session_hours),
            )
        )
    value = serializer(settings, "admin-session").dumps({"v": _fingerprint(settings), "t": token})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(settings.admin_session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        path="/admin",
    )
    return session


def end_session(response: Response, admin: AdminSession, settings: Settings) -> None:
    with session_scope() as db:
        db.execute(
            update(AdminSessionRow)
            .where(AdminSessionRow.id == admin.id, AdminSessionRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    response.delete_cookie(
        SESSION_COOKIE, path="/admin", secure=settings.secure_cookies, httponly=True, samesite="strict"
    )


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
        secure=settings.secure_cookies,
        path="/admin",
    )


def check_login_csrf(request: Request, settings: Settings, token: str | None) -> None:
    raw = request.cookies.get(LOGIN_CSRF_COOKIE)
    try:
        expected = str(serializer(settings, "login-csrf").loads(raw or "", max_age=3600))
    except BadSignature:
        expected = ""
    if not expected or not token or not hmac.compare_digest(expected.encode(), token.encode()):
        raise UserError(403, "the form has expired or its CSRF token is invalid: reload the login page")


def reserve_login_attempt(client: str) -> bool:
    """Count one login attempt of this client address before its password is checked; False when it has had
    LOGIN_FAILURES_ALLOWED attempts in the current LOGIN_WINDOW. One atomic upsert in the database, so the
    count is shared by every web process and parallel guesses cannot slip past it. Counted per
    ``web.limit_key`` (the caller's ``web.client_limit_key``): an IPv6 client per /64, so its other
    addresses are not fresh guesses."""
    now = utcnow()
    cutoff = now - timedelta(seconds=LOGIN_WINDOW)
    with session_scope() as db:
        dialect = db.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        expired = LoginThrottle.window_start < cutoff
        stmt = (
            insert(LoginThrottle)
            .values(client=client[:128], window_start=now, attempts=1)
            .on_conflict_do_update(
                index_elements=[LoginThrottle.client],
                set_={
                    "attempts": case((expired, 1), else_=LoginThrottle.attempts + 1),
                    "window_start": case((expired, now), else_=LoginThrottle.window_start),
                },
            )
            .returning(LoginThrottle.attempts)
        )
        attempts = db.execute(stmt).scalar_one()
    return attempts <= LOGIN_FAILURES_ALLOWED


def login_succeeded(client: str) -> None:
    """The right password: this address starts afresh."""
    with session_scope() as db:
        db.execute(delete(LoginThrottle).where(LoginThrottle.client == client[:128]))


def check_password(password: str, settings: Settings) -> bool:
    return verify_password(password, admin_hash(settings))


def check_csrf(admin: AdminSession, token: str | None) -> None:
    if not token or not hmac.compare_digest(admin.csrf.encode(), token.encode()):
        raise UserError(
            403,
            "this form has expired (its CSRF token is missing or stale): reload the page and send it again",
        )
