"""`colorlab` command line: one click group; each sub-command lives in its own module."""

from __future__ import annotations

from typing import Any

import click
from pydantic import ValidationError

from backend.errors import UserError


class Refused(click.ClickException):
    """A :class:`~backend.errors.UserError` on the command line: its detail on one line, exit status 2."""

    exit_code = 2


class _Commands(click.Group):
    """The command group; every command's UserError becomes a clean message instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise Refused(exc.detail) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ColorLab: colorize grayscale photos and run the studies that judge the results."""
    from backend.config import get_settings

    try:
        get_settings()
    except ValidationError as exc:  # a bad or missing setting: say which, no traceback
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise click.ClickException(f"configuration error: {problems}") from None


def _register() -> None:
    from backend.cli import app_commands, colorize, evaluate, study, train, weights

    for command in (
        *app_commands.COMMANDS,
        weights.weights,
        train.train,
        colorize.colorize,
        evaluate.evaluate,
        study.study,
    ):
        main.add_command(command)


_register()
