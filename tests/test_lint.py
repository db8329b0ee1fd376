"""`make lint` as part of the suite, so that `make test` (what CI runs) enforces the style and the types too.

The layers contract (`lint-imports`) is checked in tests/backend/test_layers.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The folders `make lint` and `make format` cover.
SOURCES = ("backend", "worker", "tests", "benchmarks", "alembic")


def _run(tool: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A console script of this venv, run from the repository root."""
    return subprocess.run(
        [str(Path(sys.executable).with_name(tool)), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_ruff_check_passes() -> None:
    done = _run("ruff", "check", *SOURCES)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_ruff_format_is_applied() -> None:
    done = _run("ruff", "format", "--check", *SOURCES)
    assert done.returncode == 0, "run `make format`:\n" + done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.slow  # a cold run checks 100+ modules against torch's and SQLAlchemy's types: about a minute
def test_mypy_passes() -> None:
    done = _run("mypy", "backend", "worker", timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout
