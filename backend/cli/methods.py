"""`colorlab methods [NAME]`: the colorization methods, whether each can run here, and the options each
takes (what `GET /methods` says, for the command line)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import click

from backend.cli import FilePath, Refused


def _option_line(param: object) -> str:
    """One option as `--option` takes it: name=TYPE (default, range or choices)."""
    from worker.colorizers.method_info import Param

    assert isinstance(param, Param)
    kind = "JSON list" if param.type == "hints" else param.type
    facts = [f"default {param.default!r}" if param.default not in (None, [], ()) else "default: none"]
    if param.minimum is not None and param.maximum is not None:
        facts.append(f"{param.minimum:g} to {param.maximum:g}")
    if param.choices:
        facts.append("one of " + ", ".join(param.choices))
    return f"{param.name}={kind} ({'; '.join(f for f in facts if f)})"


@click.command("methods")
@click.argument("name", required=False)
@click.option(
    "--weights-dir",
    type=FilePath(file_okay=False, path_type=Path),
    default=None,
    help="Weights folder (default: the WEIGHTS_DIR setting).",
)
def methods_command(name: str | None, weights_dir: Path | None) -> None:
    """The colorization methods: whether each can run here (and, if not, what to fetch), what it gives,
    and the options `colorize --option NAME=VALUE` takes. With NAME: that method in full."""
    from backend.config import get_settings
    from worker.colorizers import methods

    folder = weights_dir or get_settings().weights_dir
    chosen = list(methods.METHODS)
    if name is not None:
        info = methods.get(name)
        if info is None:
            names = ", ".join(m.name for m in methods.METHODS)
            raise Refused(f"unknown method {name!r}; choose from {names}")
        chosen = [info]
    click.echo(f"weights looked for in {folder.resolve()}\n")
    for info in chosen:
        reason = info.unavailable_reason(folder)
        flags = (("default", info.default), ("needs --reference", info.needs_reference))
        marks = [mark for mark, on in flags if on]
        state = "available" if reason is None else f"unavailable: {reason}"
        click.echo(f"{info.name}  {info.title}" + (f"  [{', '.join(marks)}]" if marks else ""))
        click.echo(f"    {info.summary or info.title}")
        click.echo(f"    {state}")
        if name is not None and info.description:
            click.echo(textwrap.indent(textwrap.fill(info.description, 100), "    "))
        for param in info.params:
            click.echo(f"    --option {_option_line(param)}")
            if name is not None:
                click.echo(textwrap.indent(textwrap.fill(param.description, 96), "        "))
        for preset in info.presets:
            options = " ".join(f"--option {k}={v}" for k, v in preset.options.items())
            click.echo(f"    preset {preset.label}: {options}")
        click.echo("")
