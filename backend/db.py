"""Engine and session factory for the configured database (SQLite embedded default or PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import anyio
import anyio.to_thread
from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import Select

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


Converter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _DriverSQL:
    sql: str
    order: tuple[str, ...] | None  # positional drivers (SQLite): the parameters' order
    defaults: dict[str, Any]  # values the statement carries itself (``participant_seq + 1``)
    binds: tuple[tuple[str, Converter], ...]  # parameters the dialect converts (SQLite's datetimes)
    results: tuple[Converter | None, ...] | None  # per returned column; None: returns no rows


class DriverStatement:
    """A Core statement compiled once per dialect and run on the session's driver connection (psycopg,
    sqlite3), for the few statements a crowd of study participants sends: SQLAlchemy's execution took about
    a quarter more CPU per statement (a participant read by id: 320 → 240 µs; two reads and the trials:
    740 → 510 µs; benchmarks/RESULTS.md, "User study"). Parameters and returned values are converted by the
    columns' types as SQLAlchemy would; errors come as SQLAlchemy's exceptions (a lost connection is
    invalidated, and the pool with it); ``before_cursor_execute`` listeners still see each statement. The
    session's pending changes are flushed first, as its own ``execute`` would. Not supported: expanding (IN)
    parameters; rows from a ``text()`` statement."""

    def __init__(self, statement: Select[Any] | UpdateBase | TextClause) -> None:
        self.statement = statement
        returned = () if isinstance(statement, TextClause) else statement.exported_columns  # text: no rows
        self.columns: tuple[str, ...] = tuple(str(c.key) for c in returned)
        self._returned = returned
        # Per dialect object (one per engine): a few in a process, more in a test run, so bounded.
        self._compiled: dict[Dialect, _DriverSQL] = {}

    def _for(self, dialect: Dialect) -> _DriverSQL:
        done = self._compiled.get(dialect)
        if done is None:
            compiled = self.statement.compile(dialect=dialect)
            assert not compiled.escaped_bind_names, "DriverStatement: plain parameter names only"
            binds = []
            for name, bind in compiled.binds.items():
                assert not bind.expanding, "DriverStatement does not expand IN parameters"
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if process is not None:
                    binds.append((name, process))
            results = None
            if self.columns:
                results = tuple(
                    c.type.dialect_impl(dialect).result_processor(dialect, None) for c in self._returned
                )
            defaults = {k: v for k, v in compiled.params.items() if v is not None}
            order = tuple(compiled.positiontup or ()) if dialect.positional else None
            done = _DriverSQL(compiled.string, order, defaults, tuple(binds), results)
            if len(self._compiled) >= 16:
                self._compiled.clear()
            self._compiled[dialect] = done
        return done

    def execute(self, session: Session, params: dict[str, Any]) -> tuple[list[Sequence[Any]], int]:
        """(the rows the statement returned, the number of rows it matched)."""
        if session.autoflush:
            session.flush()  # as Session.execute would; returns at once when nothing is pending
        conn = session.connection()
        dialect = conn.dialect
        compiled = self._for(dialect)
        values = {**compiled.defaults, **params} if compiled.defaults else dict(params)
        for name, process in compiled.binds:
            values[name] = process(values.get(name))
        args: Sequence[Any] | dict[str, Any] = (
            values if compiled.order is None else tuple(values[n] for n in compiled.order)
        )
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None
        cursor = dbapi_conn.cursor()
        for listen in conn.engine.dispatch.before_cursor_execute:
            listen(conn, cursor, compiled.sql, args, None, False)
        try:
            cursor.execute(compiled.sql, args)
            rows: list[Sequence[Any]] = list(cursor.fetchall()) if compiled.results is not None else []
            count = cursor.rowcount
        except dialect.loaded_dbapi.Error as exc:
            gone = dialect.is_disconnect(exc, dbapi_conn, cursor)
            if gone:
                conn.invalidate(exc)
                conn.engine.dispose(close=False)  # the pool's other connections are as dead: start afresh
            raise DBAPIError.instance(
                compiled.sql,
                args,
                exc,
                dialect.loaded_dbapi.Error,
                connection_invalidated=gone,
                dialect=dialect,
            ) from exc
        finally:
            cursor.close()
        if compiled.results is not None and any(compiled.results):
            processors = compiled.results
            rows = [
                tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True)) for row in rows
            ]
        return rows, count

    def rows(self, session: Session, params: dict[str, Any]) -> list[Sequence[Any]]:
        return self.execute(session, params)[0]

    def first(self, session: Session, params: dict[str, Any]) -> Sequence[Any] | None:
        rows = self.execute(session, params)[0]
        return rows[0] if rows else None

    def scalar(self, session: Session, params: dict[str, Any]) -> Any:
        row = self.first(session, params)
        return None if row is None else row[0]

    def rowcount(self, session: Session, params: dict[str, Any]) -> int:
        return self.execute(session, params)[1]


def reset_caches() -> None:
    """Forget engines (tests switch databases by changing settings)."""
    for fn in (_engine_for, _sessionmaker_for, _statement_sessionmaker_for):
        fn.cache_clear()
