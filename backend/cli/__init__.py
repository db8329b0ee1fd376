"""`colorlab` command line: one click group; each sub-command lives in its own module."""

from __future__ import annotations

import math
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from backend.errors import UserError


class FiniteRange(click.FloatRange):
    """A float option in a range, and finite: NaN passes every comparison, and inf overflows a schedule."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class FilePath(click.Path):
    """A file or folder option or argument: what click finds wrong with it (missing, a file where a folder
    goes, unreadable) is a file the command cannot use: one line and exit 1 (README), not a usage error's
    banner and exit 2."""

    def fail(
        self, message: str, param: click.Parameter | None = None, ctx: click.Context | None = None
    ) -> Any:
        if isinstance(param, click.Option):
            hint = "/".join(param.opts)
        else:
            hint = param.human_readable_name if param is not None else ""
        raise click.ClickException(f"{hint}: {message}" if hint else message)


class Refused(click.ClickException):
    """A :class:`~backend.errors.UserError` on the command line: its detail on one line, exit status 2 (a 409,
    a file or state it cannot use, exits 1)."""

    exit_code = 2


class _Commands(click.Group):
    """The command group; every command's UserError becomes a clean message instead of a traceback, and so
    does a problem outside the program (a path that cannot be written, a database not set up)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader left (`colorlab weights list | head -1`): stop quietly, as a program killed by
            # SIGPIPE does, and send what is still buffered nowhere so that exiting does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(128 + signal.SIGPIPE) from None
        except UserError as exc:
            if exc.status_code == 409:  # not a wrong request: what it needs is not there (weights, stimuli)
                raise click.ClickException(exc.detail) from None
            raise Refused(exc.detail) from None
        except Exception as exc:
            message = outside_problem(exc)
            if message is None:
                raise  # a bug: keep its traceback
            raise click.ClickException(message) from None


def outside_problem(exc: BaseException) -> str | None:
    """One line on what went wrong outside the program (the file system, the database), or None."""
    if isinstance(exc, OSError) and exc.strerror:
        paths = " → ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
        return f"{paths}: {exc.strerror}" if paths else exc.strerror
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.ArgumentError | sqlalchemy.exc.NoSuchModuleError):
        return f"DATABASE_URL is not a database URL SQLAlchemy can use ({exc})"
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        reason = database_reason(exc)
        if "no such table" in reason or "does not exist" in reason:
            return f"the database is not set up ({reason}): run `colorlab migrate` first"
        return f"the database cannot be used: {reason}"
    return None


def database_reason(exc: Exception) -> str:
    """The database's own words on one line: not SQLAlchemy's wrapping and its "Background on this error"
    link."""
    import sqlalchemy.exc

    orig = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig else exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


def read_text(path: Path, option: str) -> str:
    """A UTF-8 text file given to ``option``, or a clean error saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{option} {path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise click.ClickException(f"{option} {path}: {exc.strerror}") from None


def default_device(given: str | None) -> str:
    """``--device`` as given, else the DEVICE setting's device (auto: CUDA when present); a setting naming a
    device this machine lacks is one line saying so (a .env written for a GPU worker, read on a laptop)."""
    if given:
        return given
    from backend.config import get_settings
    from worker.colorizers.loading import resolve_device

    try:
        return resolve_device(get_settings().device)
    except ValueError as exc:
        raise click.ClickException(f"DEVICE setting: {exc}; give --device cpu to run here") from None


def use_threads(given: int = 0) -> int:
    """Torch's CPU threads: ``given`` (a --threads), else the TORCH_THREADS setting, else torch's default
    (0, left as it is); returns the number set."""
    from backend.config import get_settings

    threads = given or get_settings().torch_threads
    if threads:
        import torch

        torch.set_num_threads(threads)
    return threads


def command_line() -> str:
    """The command as the user typed it (quoted again for a shell): for messages that say what to run."""
    return "colorlab " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def checked_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback for ``--device``: an unknown or absent torch device is a usage error (no traceback)."""
    if value in (None, "cpu"):
        return value
    from worker.colorizers.loading import resolve_device

    try:
        return resolve_device(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="colorlab", message="colorlab %(version)s")
def main() -> None:
    """ColorLab: colorize grayscale photos and run the studies that judge the results."""
    from backend.config import get_settings

    if {"-h", "--help"} & set(sys.argv[1:]):  # a command's help is read to mend a bad setting, too
        return
    try:
        get_settings()
    except ValidationError as exc:  # a bad or missing setting: say which, no traceback
        raise click.ClickException(f"configuration error: {settings_problems(exc)}") from None


def settings_problems(exc: ValidationError) -> str:
    """What is wrong with the settings, in their environment names: "RETAIN_DONE_DAYS: Input should be
    greater than 0" (a check across settings says its own names)."""
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        names = ".".join(map(str, error["loc"])).upper()
        problems.append(f"{names}: {message}" if names else message)
    return "; ".join(problems)


def _register() -> None:
    from backend.cli import app_commands, colorize, evaluate, methods, study, train, weights

    for command in (
        *app_commands.COMMANDS,
        methods.methods_command,
        weights.weights,
        train.train,
        colorize.colorize,
        evaluate.evaluate,
        study.study,
    ):
        main.add_command(command)


_register()
