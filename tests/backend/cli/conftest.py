"""What the command-line tests share."""

from __future__ import annotations

from click.testing import CliRunner

from backend.cli import main


def run_cli(*args: str) -> tuple[int, str]:
    """`colorlab ARGS` in-process: its exit status and output; a traceback fails the test."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output
