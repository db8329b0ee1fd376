"""Alembic environment: the URL and metadata come from ColorLab itself."""

from __future__ import annotations

from alembic import context
from backend.config import get_settings
from backend.db import make_engine
from backend.models import Base
from backend.study import models as _study_models  # noqa: F401  (its tables join Base.metadata)

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=get_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(get_settings())
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    # render_as_batch: ALTERs work on SQLite too, so one migration chain serves both databases.
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True
    )
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch ALTER rebuilds the table and drops the old one; with foreign keys on, SQLite deletes the
        # rows that point at it first (a study's photos and answers, by their ON DELETE CASCADE) or refuses
        # halfway. Off while the tables are rebuilt (the pragma is a no-op inside a transaction), then
        # checked: a migration that left a dangling reference fails rather than going unnoticed.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if dangling:
                raise RuntimeError(f"the migration left rows pointing at nothing: {dangling[:5]}")
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
