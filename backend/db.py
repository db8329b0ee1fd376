"""Engine and session factory for the configured database (SQLite embedded default or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

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
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
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
        connect_args={"connect_timeout": 3},
        **_pool_args(settings),
    )


def _pool_args(settings: Settings) -> dict[str, Any]:
    # The pool holds at least as many connections as the web process has threads (checked by Settings),
    # so a thread never waits for one; a long timeout makes a burst queue rather than fail.
    return {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow, "pool_timeout": 30}


@lru_cache
def _engine_for(url: str) -> Engine:
    settings = get_settings()
    assert settings.database_url == url
    return make_engine(settings)


def get_engine() -> Engine:
    return _engine_for(get_settings().database_url)


@lru_cache
def _sessionmaker_for(url: str) -> sessionmaker[Session]:
    factory = sessionmaker(bind=_engine_for(url), expire_on_commit=False)

    @event.listens_for(factory, "after_flush")
    def _wrote(session: Session, _ctx: object) -> None:
        session.info["wrote"] = True

    @event.listens_for(factory, "after_transaction_end")
    def _ended(session: Session, transaction: Any) -> None:
        if transaction.parent is None:
            session.info.pop("wrote", None)

    return factory


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
    """FastAPI dependency: one session per request (routes commit explicitly)."""
    session = session_factory()()
    try:
        yield session
    finally:
        session.close()


def reset_caches() -> None:
    """Forget engines (tests switch databases by changing settings)."""
    for fn in (_engine_for, _sessionmaker_for):
        fn.cache_clear()


def release_read_transaction(session: Session) -> None:
    """End a request's transaction when it only read: its connection goes back to the pool at once.

    The loaded objects stay usable (``expire_on_commit=False``); a session with unsaved or flushed but
    uncommitted changes is left alone (it is rolled back on close, as before).
    """
    if (
        session.in_transaction()
        and not session.info.get("wrote")
        and not (session.new or session.dirty or session.deleted)
    ):
        session.commit()
