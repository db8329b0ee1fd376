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
    from backend.cli import evaluate

    main.add_command(evaluate.evaluate)
    from backend.cli import study

    main.add_command(study.study)
    from backend.cli import weights

    main.add_command(weights.weights)
    from backend.cli import train

    main.add_command(train.train)
    from backend.cli import colorize

    main.add_command(colorize.colorize)


_register()
