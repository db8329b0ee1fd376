"""`colorlab study ...`: build, open, close, inspect and export user studies from the command line."""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path

import click

from backend.cli import FilePath, Refused, read_text
from backend.config import get_settings


def _text(value: str | None, file: Path | None, option: str) -> str:
    return read_text(file, option) if file is not None else value or ""


@click.group()
def study() -> None:
    """User studies (report §6): real-or-colorized judgements and 1-4 star ratings."""


@study.command("create")
@click.option("--title", required=True, help="Title shown to participants.")
@click.option(
    "--photos",
    "photos_path",
    required=True,
    type=FilePath(exists=True, path_type=Path),
    help="Folder of colour photos, or a .zip file of them.",
)
@click.option("--methods", required=True, help="Comma-separated methods, e.g. cnn,fusion,gan.")
@click.option(
    "--trials",
    nargs=2,
    type=int,
    default=(5, 5),
    show_default=True,
    help="Trials in part 1 (real or colorized) and part 2 (stars); 0 leaves a part out (`--trials 5 0`: a "
    "real-vs-fake survey only), not both.",
)
@click.option("--slug", default=None, help="Address /study/SLUG (default: from the title).")
@click.option("--instructions", default=None, help="Instructions text (default: a standard text).")
@click.option(
    "--instructions-file",
    type=FilePath(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The instructions from a UTF-8 text file (instead of --instructions).",
)
@click.option("--consent", default=None, help="Consent text (default: a standard text).")
@click.option(
    "--consent-file",
    type=FilePath(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The consent text from a UTF-8 text file (instead of --consent).",
)
@click.option("--completion-code", default=None, help="Code shown at the end (e.g. Prolific's).")
@click.option("--redirect-url", default=None, help="Where participants are sent at the end.")
@click.option("--attention-checks/--no-attention-checks", default=False, show_default=True)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Use only the first N photos (sorted by name)."
)
def create_cmd(
    title: str,
    photos_path: Path,
    methods: str,
    trials: tuple[int, int],
    slug: str | None,
    instructions: str | None,
    instructions_file: Path | None,
    consent: str | None,
    consent_file: Path | None,
    completion_code: str | None,
    redirect_url: str | None,
    attention_checks: bool,
    limit: int | None,
) -> None:
    """Build a study: store the photos, queue their colorizations, register the stimuli."""
    from backend.db import session_scope
    from backend.study import builder
    from backend.study.photos import from_path

    settings = get_settings()
    photos = from_path(photos_path, settings, limit)
    if not photos:
        raise click.ClickException(f"no photos in {photos_path} (nor in its subfolders)")
    spec = builder.StudySpec(
        title=title,
        methods=[m for m in methods.split(",") if m.strip()],
        trials_part1=trials[0],
        trials_part2=trials[1],
        instructions=_text(instructions, instructions_file, "--instructions-file"),
        consent_text=_text(consent, consent_file, "--consent-file"),
        completion_code=completion_code,
        redirect_url=redirect_url,
        attention_checks=attention_checks,
        slug=slug,
    )
    with session_scope() as session:
        created = builder.create_study(session, settings, spec, photos)
        slug_out, n_methods = created.slug, len(created.methods)
    kinds = ("real-or-colorized", "star-rating")  # a part left out (0 trials) is not named
    parts = " + ".join(f"{n} {kind}" for n, kind in zip(trials, kinds, strict=True) if n)
    click.echo(
        f"study {slug_out!r}: {len(photos)} photos × (real + {n_methods} methods), {parts} trials; "
        f"{len(photos) * n_methods} colorization job(s) queued"
    )
    click.echo(
        f"participants: {settings.public_url}/study/{slug_out}   "
        f"results: {settings.public_url}/admin/studies/{slug_out}"
    )
    click.echo(
        "open it when the colorizations are done (a worker runs them: `colorlab worker`, or `colorlab "
        f"run`): colorlab study open {slug_out}"
    )


@study.command("list")
def list_studies() -> None:
    """List the studies."""
    from sqlalchemy import select

    from backend.db import session_scope
    from backend.study.models import Study

    with session_scope() as session:
        studies = session.scalars(select(Study).order_by(Study.created_at)).all()
        for s in studies:
            click.echo(f"{s.slug:40} {s.status:7} {','.join(s.methods):24} {s.title}")
    if not studies:  # on stderr: a script reading the list still reads nothing
        click.echo("no studies yet: `colorlab study create` or /admin makes one", err=True)


@study.command("status")
@click.argument("slug")
def status(slug: str) -> None:
    """Readiness of the stimuli and the results so far (JSON)."""
    from backend.db import session_scope
    from backend.study import builder
    from backend.study.results import study_summary

    with session_scope() as session:
        s = builder.find_study(session, slug)
        readiness = builder.refresh(session, get_settings(), s)
        summary = study_summary(session, s)
        summary.pop("photos")
        click.echo(json.dumps({"readiness": readiness.message(), **summary}, indent=1, default=str))


@study.command("open")
@click.argument("slug")
def open_(slug: str) -> None:
    """Open a study to participants (only when every stimulus is ready)."""
    from backend.db import session_scope
    from backend.study import builder

    with session_scope() as session:
        builder.open_study(session, get_settings(), builder.find_study(session, slug))
    click.echo(f"study {slug!r} is open")


@study.command("close")
@click.argument("slug")
def close(slug: str) -> None:
    """Close a study to new participants."""
    from backend.db import session_scope
    from backend.study import builder

    with session_scope() as session:
        builder.close_study(session, builder.find_study(session, slug))
    click.echo(f"study {slug!r} is closed")


@study.command("delete")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(slug: str, yes: bool) -> None:
    """Delete a draft or closed study for good: its answers, colorizations and photos (export first)."""
    from backend.db import session_scope
    from backend.study import builder

    with session_scope() as session:
        found = builder.find_study(session, slug)
        grace = get_settings().study_close_grace_minutes
        if reason := builder.deletion_refusal(session, found, grace_minutes=grace):
            raise click.ClickException(reason)  # refused before asking
        if not yes:
            people = builder.participant_count(session, found)
            click.confirm(
                f"Delete study {slug!r}, its {people} participant(s)' answers and its photos? "
                "This cannot be undone",
                abort=True,
            )
        freed = builder.delete_study(session, found, grace_minutes=grace)
    click.echo(f"study {slug!r} deleted: {freed}")


@study.command("export")
@click.argument("slug")
@click.option(
    "--kind",
    type=click.Choice(["trials", "participants", "stimuli", "summary", "comparisons", "codebook"]),
    default="trials",
    show_default=True,
    help="Which table: every answer (trials), one row per participant, per stimulus, per condition "
    "(summary), each pair of conditions (comparisons), or what every column means (codebook).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="CSV (one row per record, as the web page's downloads) or JSON.",
)
@click.option(
    "-o",
    "--output",
    type=FilePath(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: standard output).",
)
@click.option(
    "--exclude-failed-attention",
    is_flag=True,
    help="Summary and comparisons: leave out participants who failed an attention check (as the results page "
    "can).",
)
def export_cmd(slug: str, kind: str, fmt: str, output: Path | None, exclude_failed_attention: bool) -> None:
    """Export a study's data (CSV cells beginning with = + - @ are neutralised)."""
    from backend.db import session_factory, session_scope
    from backend.study import builder, export

    with session_scope() as session:
        study_id = builder.find_study(session, slug).id
    # A file is written beside its final name and renamed when whole: a failure (a database gone, Ctrl+C)
    # never leaves a partial export in place of an earlier one.
    part = output.with_name(f".{output.name}.part") if output else None
    out = part.open("w", encoding="utf-8", newline="") if part else sys.stdout
    try:
        options = export.ExportOptions(get_settings().study_fast_answer_ms, exclude_failed_attention)
        for chunk in export.stream(session_factory(), study_id, kind, fmt, options):
            out.write(chunk)
        if part and output:
            out.close()
            os.replace(part, output)
    finally:
        if part:
            out.close()
            part.unlink(missing_ok=True)


def _at_terminal() -> bool:
    return sys.stdin.isatty()


@study.command("hash-password")
def hash_password() -> None:
    """Print a hash of a password for ADMIN_PASSWORD (so the plain text need not be stored). Typed at a
    terminal, it is asked twice without echo; piped in (`... | colorlab study hash-password`), its first line
    is read."""
    from backend.auth import hash_password as make

    typed = _at_terminal()
    # piped: a script's password (getpass would warn that it cannot hide what is not typed)
    first = getpass.getpass("Password: ") if typed else sys.stdin.readline().rstrip("\r\n")
    if len(first) < 8:
        raise Refused("use at least 8 characters")
    if typed and getpass.getpass("Again: ") != first:
        raise Refused("the passwords differ")
    click.echo(make(first))
