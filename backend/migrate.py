"""Apply Alembic migrations programmatically (used by `colorlab migrate`, `make run` and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

ROOT = Path(__file__).resolve().parent.parent


def alembic_config() -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    return cfg


def upgrade(revision: str = "head") -> None:
    command.upgrade(alembic_config(), revision)


def downgrade(revision: str) -> None:
    command.downgrade(alembic_config(), revision)


def pending() -> str | None:
    """Why the database is not at the newest schema ("not migrated", "at 0010, not 0012"), or None when it
    is; the database is asked once (a connection it cannot make raises)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from backend.db import get_engine

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with get_engine().connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current == head:
        return None
    return "not migrated" if current is None else f"at schema {current}, not {head}"
