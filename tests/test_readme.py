"""The README stays true: its settings table is the one generated from the Settings object."""

from __future__ import annotations

from pathlib import Path

from backend.settings_doc import table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_settings_table_is_current() -> None:
    text = README.read_text()
    assert table() in text, "regenerate the table: python -m backend.settings_doc"


def test_two_commands_are_documented() -> None:
    text = README.read_text()
    assert "make run" in text and "make test" in text
