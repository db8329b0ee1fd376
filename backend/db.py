"""Engine and session factory for the configured database (SQLite embedded default or PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast

import anyio
import anyio.to_thread
from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from backend.config import Settings, get_settings


def make_engine(settings: Settings) -> Engine:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            settings.database_url,
            connect_args={"timeout": 30, "check_same_thread": False},
            **_pool_args(settings),
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # web and worker processes read while the other writes
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return _postgres_engine(settings.database_url, **_pool_args(settings))


def _postgres_engine(url: str, **options: Any) -> Engine:
    # A new connection on a saturated 2-core machine can take seconds; 3 s turned load into 503s.
    engine = create_engine(url, connect_args={"connect_timeout": 10}, **options)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_S = 2.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, but only for a connection that sat in the pool for PING_AFTER_IDLE_S.

    A ping is a round trip per request; under a burst it was a tenth of the web process's time. A connection
    returned moments ago is almost surely alive; if the server restarted in between, the request fails as a
    503 (``web.install``) and SQLAlchemy drops every pooled connection at once, so the outage costs a request
    or two, not one per connection."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry, _proxy: object) -> None:
        if time.monotonic() - record.info.get("checked_in_at", 0.0) < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)  # the dialect's own ping: leaves no transaction open
        except Exception as exc:  # the pool retries the checkout with a new connection
            raise DisconnectionError(str(exc)) from exc


def _pool_args(settings: Settings) -> dict[str, Any]:
    # The pool holds at least as many connections as the web process has threads (checked by Settings),
    # so a thread never waits for one; a long timeout makes a burst queue rather than fail.
    return {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow, "pool_timeout": 30}


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched. Session.execute is typed as returning a Result whatever the
    statement; for these it is a CursorResult, which has the count."""
    return cast(CursorResult[Any], result).rowcount


@lru_cache
def _engine_for(url: str) -> Engine:
    settings = get_settings()
    assert settings.database_url == url
    return make_engine(settings)


def get_engine() -> Engine:
    return _engine_for(get_settings().database_url)


@lru_cache
def _sessionmaker_for(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=_engine_for(url), expire_on_commit=False)


def session_factory() -> sessionmaker[Session]:
    return _sessionmaker_for(get_settings().database_url)


@lru_cache
def _statement_sessionmaker_for(url: str) -> sessionmaker[Session]:
    engine = _engine_for(url)
    if engine.dialect.name == "postgresql":
        # A pool of its own whose connections stay in autocommit: switching a shared pool's connection at
        # each checkout and back at each checkin cost a fifth of a participant request's database work.
        engine = _postgres_engine(
            url,
            isolation_level="AUTOCOMMIT",
            pool_size=get_settings().study_threads,  # used from the STUDY_THREADS threads only
            max_overflow=0,
            pool_timeout=30,
        )
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with _committed(session_factory()()) as session:
        yield session


@contextmanager
def statement_scope() -> Iterator[Session]:
    """A session in which, on PostgreSQL, every statement is its own transaction: no BEGIN, COMMIT or ROLLBACK
    round trips, which were half of a study participant's opening requests (benchmarks/RESULTS.md, "User
    study"). Only for work whose every statement stands alone: reads, and writes that are each complete and
    idempotent by themselves (several rows that must land together go in one statement). On SQLite it is
    :func:`session_scope` (no network round trips to spare)."""
    with _committed(_statement_sessionmaker_for(get_settings().database_url)()) as session:
        yield session


@contextmanager
def _committed(session: Session) -> Iterator[Session]:
    """Commit the session on success, roll it back on error, and close it either way."""
    try:
        yield session
        session.commit()
    except BaseException:
        _rollback_quietly(session)
        raise
    finally:
        close_quietly(session)


def close_quietly(session: Session) -> None:
    """Close a session whose connection may have died meanwhile (the database restarted): the ROLLBACK that
    returns it to the pool then fails, and the connection is dropped instead. Raising here would replace the
    request's own answer, or, after the response has started, make the server reset the client's kept-alive
    connection (the flaky test_postgres_restart_under_traffic)."""
    try:
        session.close()
    except DBAPIError:
        session.invalidate()


def _rollback_quietly(session: Session) -> None:
    try:
        session.rollback()
    except DBAPIError:  # the connection is gone: nothing to roll back, the original error is what matters
        session.invalidate()


async def get_session() -> AsyncIterator[Session]:
    """FastAPI dependency: one session per request (routes commit explicitly).

    Its close runs in a thread of its own pool, not in the request threads (WEB_THREADS): a finished request
    still holding a connection would otherwise queue for a thread behind requests that each wait for a
    connection (pool time-outs, 503s, under 60 requests once). Under a crowd, prefer an ``async`` route that
    does its database work in one ``run_in_threadpool(...)`` call with :func:`session_scope`: it holds a
    connection only while a thread works for it.
    """
    session = session_factory()()
    try:
        yield session
    finally:
        await anyio.to_thread.run_sync(close_quietly, session, limiter=_closer())


@lru_cache
def _closer() -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(64)


def reset_caches() -> None:
    """Forget engines (tests switch databases by changing settings)."""
    for fn in (_engine_for, _sessionmaker_for, _statement_sessionmaker_for):
        fn.cache_clear()
