"""db.DriverStatement: a Core statement run on the driver's own cursor must behave as SQLAlchemy's execution
would: the same values and types back, the statement's own literals, SQLAlchemy's exceptions, the session's
pending changes flushed first, listeners told, a lost connection recovered from (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from backend.db import DriverStatement, session_scope, statement_scope
from backend.models import Image, utcnow
from tests.conftest import statements_sent

IMAGES = Image.__table__
BY_ID = DriverStatement(
    select(IMAGES.c.id, IMAGES.c.data, IMAGES.c.is_color, IMAGES.c.created_at, IMAGES.c.filename).where(
        IMAGES.c.id == bindparam("iid")
    )
)
ADD = DriverStatement(
    insert(IMAGES).values(
        id=bindparam("iid"),
        sha256="0" * 64,
        data=bindparam("data"),
        size_bytes=3,
        width=1,
        height=1,
        mode="L",
        format="PNG",
        is_color=bindparam("is_color"),
        created_at=bindparam("at"),
    )
)
WIDEN = DriverStatement(
    update(IMAGES)
    .where(IMAGES.c.id == bindparam("iid"))
    .values(width=IMAGES.c.width + 1)  # a literal the statement carries itself
    .returning(IMAGES.c.width)
)


def test_values_and_types_match_sqlalchemys_own(database) -> None:
    at = utcnow() - timedelta(days=3, microseconds=17)
    with session_scope() as s:
        assert ADD.rowcount(s, {"iid": "a", "data": b"\x00\xffx", "is_color": True, "at": at}) == 1
    with session_scope() as s:
        mine = BY_ID.first(s, {"iid": "a"})
        theirs = s.execute(BY_ID.statement, {"iid": "a"}).one()
        assert mine is not None and tuple(mine) == tuple(theirs)
        assert [type(v) for v in mine] == [type(v) for v in theirs]
        assert mine[1] == b"\x00\xffx" and mine[2] is True and mine[4] is None
        assert mine[3].replace(tzinfo=None) == at.replace(tzinfo=None)
        assert BY_ID.columns == ("id", "data", "is_color", "created_at", "filename")
        assert BY_ID.first(s, {"iid": "missing"}) is None and BY_ID.scalar(s, {"iid": "missing"}) is None
        assert WIDEN.scalar(s, {"iid": "a"}) == 2 and WIDEN.scalar(s, {"iid": "a"}) == 3
        assert WIDEN.rows(s, {"iid": "missing"}) == []


def test_errors_are_sqlalchemys_and_the_session_goes_on(database) -> None:
    params = {"iid": "dup", "data": b"x", "is_color": False, "at": utcnow()}
    with session_scope() as s:
        ADD.rowcount(s, params)
    with session_scope() as s:
        with pytest.raises(IntegrityError):
            ADD.rowcount(s, params)
        s.rollback()
        assert BY_ID.scalar(s, {"iid": "dup"}) == "dup"


def _image(image_id: str) -> Image:
    """A one-pixel image row for the ORM to add."""
    return Image(
        id=image_id, sha256="1" * 64, data=b"p", size_bytes=1, width=1, height=1, mode="L", format="PNG"
    )


def test_pending_changes_are_flushed_and_listeners_see_the_statement(database) -> None:
    with session_scope() as s, statements_sent(s) as seen:
        s.add(_image("pending"))
        assert BY_ID.scalar(s, {"iid": "pending"}) == "pending"  # the INSERT went first
        assert (
            seen[0].startswith("INSERT")
            and seen[-1] == BY_ID.statement.compile(dialect=s.get_bind().dialect).string
        )
        with s.no_autoflush:
            s.add(_image("later"))
            assert BY_ID.scalar(s, {"iid": "later"}) is None  # as Session.execute: no flush here


def test_a_lost_connection_fails_one_statement_then_the_pool_recovers(
    postgres_url, monkeypatch, tmp_path
) -> None:
    """As with SQLAlchemy's own execution: connections cut under the participants' pool cost one failed
    statement (OperationalError, answered with 503 by the web app), not one per pooled connection."""
    from tests.conftest import apply_settings, migrate

    apply_settings(monkeypatch, DATA_DIR=tmp_path / "var", DATABASE_URL=postgres_url)
    migrate()
    sessions = [statement_scope() for _ in range(3)]  # fill the pool: three connections to cut
    for scope in sessions:
        BY_ID.scalar(scope.__enter__(), {"iid": "x"})
    for scope in sessions:
        scope.__exit__(None, None, None)
    cut = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
    with session_scope() as admin:  # from the app's other pool
        admin.execute(text(cut + "AND pid <> pg_backend_pid()"))
    failures = 0
    for _ in range(4):
        try:
            with statement_scope() as s:
                assert BY_ID.scalar(s, {"iid": "x"}) is None
        except OperationalError:
            failures += 1
    assert failures <= 1
