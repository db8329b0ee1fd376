"""`colorlab weights list|fetch`: which weight files are present and verified, and obtaining them."""

from __future__ import annotations

from pathlib import Path

import click

from backend.cli import FilePath


def _weights_dir(value: Path | None) -> Path:
    from backend.config import get_settings

    return Path(value) if value else get_settings().weights_dir


@click.group("weights")
def weights() -> None:
    """List and fetch the weight files the colorization methods need (see the manifest)."""


@weights.command("list")
@click.option(
    "--weights-dir",
    type=FilePath(file_okay=False, path_type=Path),
    default=None,
    help="Weights folder (default: the WEIGHTS_DIR setting).",
)
@click.option("--quick", is_flag=True, help="Check sizes only (skip the sha256 of every file).")
def list_weights(weights_dir: Path | None, quick: bool) -> None:
    """Every manifest entry: present / verified / missing, with its source and the methods that use it."""
    from worker.colorizers import methods
    from worker.colorizers.weights import check

    folder = _weights_dir(weights_dir)
    manifest = methods.weight_files()
    users: dict[str, list[str]] = {}
    for info in methods.METHODS:
        for weight in info.weights:
            users.setdefault(weight.name, []).append(info.name)
    click.echo(f"weights dir: {folder.resolve()}")
    for name in sorted(manifest):
        entry = manifest[name]
        status = check(entry, folder, full=not quick)
        if not status.present:
            state = "missing"
        elif status.ok:
            state = "present" if quick or not entry.sha256 else "verified"
        else:
            state = f"BAD ({status.message})"
        where = "bundled" if entry.bundled else ("fetchable" if entry.fetchable else "not fetchable here")
        click.echo(f"{name:20} {state:10} {where:18} used by: {', '.join(users.get(name, [])) or '-'}")
        click.echo(f"{'':20} {status.path}  <- {entry.source}")
    click.echo("methods:")
    width = max(len(info.name) for info in methods.METHODS)
    for info in methods.METHODS:
        reason = info.unavailable_reason(folder, verify=not quick)
        click.echo(f"  {info.name:{width}} {'available' if not reason else 'unavailable: ' + reason}")


@weights.command("fetch")
@click.argument("names", nargs=-1)
@click.option(
    "--weights-dir",
    type=FilePath(file_okay=False, path_type=Path),
    default=None,
    help="Weights folder (default: the WEIGHTS_DIR setting).",
)
@click.option("--force", is_flag=True, help="Fetch again even when a verified copy is present.")
@click.option(
    "--best-effort",
    is_flag=True,
    help="Report files that cannot be had here but exit 0 (their methods show as unavailable).",
)
def fetch_weights(names: tuple[str, ...], weights_dir: Path | None, force: bool, best_effort: bool) -> None:
    """Fetch NAMES (default: every fetchable entry) into the weights folder, verifying size and sha256."""
    from worker.colorizers import methods
    from worker.colorizers.weights import FetchError, fetch

    folder = _weights_dir(weights_dir)
    manifest = methods.weight_files()
    unknown = [n for n in names if n not in manifest]
    if unknown:
        raise click.BadParameter(
            f"unknown weight file(s): {', '.join(unknown)}; known: {', '.join(sorted(manifest))}",
            param_hint="NAMES",
        )
    todo = list(names) or [n for n, e in sorted(manifest.items()) if e.fetchable or e.bundled]
    failures = []
    for name in todo:
        try:
            path = fetch(manifest[name], folder, force=force)
        except FetchError as exc:
            failures.append(str(exc))
            click.echo(f"{name}: FAILED: {exc}", err=True)
        else:
            click.echo(f"{name}: ok {path}")
    if failures and best_effort:
        click.echo(
            f"{len(failures)} of {len(todo)} weight file(s) could not be fetched here; "
            "their methods are shown as unavailable",
            err=True,
        )
    elif failures:
        raise click.ClickException(f"{len(failures)} of {len(todo)} weight file(s) could not be fetched")
