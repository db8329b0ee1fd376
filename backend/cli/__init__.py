"""`colorlab` command line: one click group; each sub-command lives in its own module."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """ColorLab: colorize grayscale photos and run the studies that judge the results."""


def _register() -> None:
    from backend.cli import app_commands

    for command in app_commands.COMMANDS:
        main.add_command(command)
    # Further sub-command modules add themselves here, one line each:
    # from backend.cli import weights; main.add_command(weights.weights)


_register()
