"""Engine and session factory for the configured database (SQLite embedded default or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
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
    return create_engine(
        settings.database_url,
        pool_pre_ping=True,
        # A new connection on a saturated 2-core machine can take seconds; 3 s turned load into 503s.
        connect_args={"connect_timeout": 10},
        **_pool_args(settings),
    )


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


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one session per request (routes commit explicitly).

    Under a crowd, prefer an ``async`` route that does its database work in one
    ``run_in_threadpool(...)`` call with :func:`session_scope`, or a sync route that returns a ``Response``:
    FastAPI closes this session only after the response is serialised, and a sync route's serialisation
    waits for a thread of the same pool the routes run in, so connections held by requests queued for a
    thread while every thread waited for a connection ended in pool time-outs (503s under 60 requests).
    """
    session = session_factory()()
    try:
        yield session
    finally:
        session.close()


def reset_caches() -> None:
    """Forget engines (tests switch databases by changing settings)."""
    for fn in (_engine_for, _sessionmaker_for):
        fn.cache_clear()
