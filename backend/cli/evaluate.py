"""`colorlab evaluate`: score colorization methods against real photos (see worker/colorizers/evaluation/)."""

from __future__ import annotations

from pathlib import Path

import click

from backend.cli import FilePath, FiniteRange, checked_device, default_device, use_threads


@click.command("evaluate")
@click.option(
    "--methods",
    default="",
    help="Comma-separated method names (e.g. unet-bins,cnn,fusion); the gray baseline is always added "
    "(none: the baseline alone).",
)
@click.option(
    "--data",
    "data",
    required=True,
    type=FilePath(exists=True, path_type=Path),
    help="A folder of photos, or a zip file (its test/ entries, e.g. ../shared/data/cifar10.zip).",
)
@click.option(
    "--references",
    type=FilePath(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of reference images for methods that need one, matched by file name.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=FilePath(file_okay=False, path_type=Path),
    help="Output folder (re-running with the same folder resumes).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluate N photos spread evenly over the data set.",
)
@click.option(
    "--split",
    type=click.Choice(["val", "all"]),
    default="all",
    show_default=True,
    help="val: only the held-out validation photos of the training split (folders).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Photos per forward pass of the feed-forward methods and of the classifier.",
)
@click.option(
    "--eps",
    type=FiniteRange(min=0, max=2, min_open=True),
    default=0.02,
    show_default=True,
    help="ε of the report's eq. 9 accuracy (ab scaled to [-1, 1]).",
)
@click.option(
    "--samples", type=click.IntRange(min=0), default=8, show_default=True, help="Photos on the contact sheet."
)
@click.option(
    "--device",
    default=None,
    callback=checked_device,
    help="Torch device (default: the DEVICE setting; auto = CUDA if present).",
)
@click.option(
    "--weights-dir",
    type=FilePath(file_okay=False, path_type=Path),
    default=None,
    help="Weights folder (default: the WEIGHTS_DIR setting).",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="METHOD.NAME=VALUE",
    help="A method option, e.g. exemplar.iterations=50 (repeatable; defaults: the method's own).",
)
@click.option(
    "--weights",
    "own_weights",
    multiple=True,
    metavar="NAME=PATH",
    help="Score weights of your own in place of a trained method's (repeatable): NAME is the weight file's "
    "(cnn, fusion, gan, unet-bins, reference-fusion), PATH a weights file `colorlab train` wrote, e.g. "
    "--weights cnn=var/train/cnn.pt (unet-bins= also changes unet-bins-reference and exemplar's start). "
    "run.json records its sha256.",
)
@click.option(
    "--bf16",
    is_flag=True,
    help="bfloat16 autocast on CPUs that have it natively (faster; ab within about a Lab unit). Default: "
    "float32, the same numbers on every machine.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def evaluate(
    methods: str,
    data: Path,
    references: Path | None,
    out: Path,
    limit: int | None,
    split: str,
    batch_size: int,
    eps: float,
    samples: int,
    device: str | None,
    weights_dir: Path | None,
    options: tuple[str, ...],
    own_weights: tuple[str, ...],
    bf16: bool,
    no_progress: bool,
) -> None:
    """Colorize photos with each method and score them against the real colours.

    Writes per_image.csv, summary.md/.csv, curves.svg/.png and contact_sheet.png into --out.
    """
    from backend.config import get_settings
    from worker.colorizers.evaluation import EvaluationError
    from worker.colorizers.evaluation.evaluate import EvalConfig, run_evaluation
    from worker.colorizers.loading import Unavailable

    for read in (data, references):  # its sheets and samples would be scored as photos by the next run
        if read is not None and read.is_dir() and out.resolve().is_relative_to(read.resolve()):
            raise click.UsageError(f"--out {out} is inside {read}, which it reads: write it elsewhere")
    params: dict[str, dict[str, str]] = {}
    for text in options:
        key, sep, value = text.partition("=")
        method, dot, name = key.strip().partition(".")
        if not sep or not dot or not method or not name:
            raise click.BadParameter(f"{text!r}: expected METHOD.NAME=VALUE", param_hint="--option")
        params.setdefault(method, {})[name] = value.strip()
    settings = get_settings()
    run_on = default_device(device)  # --device was resolved by its callback; else the DEVICE setting
    use_threads()
    from worker.colorizers import methods as known_methods

    names = tuple(dict.fromkeys(m.strip() for m in methods.split(",") if m.strip() and m.strip() != "gray"))
    unknown = [n for n in names if known_methods.get(n) is None]
    if unknown:
        raise click.BadParameter(
            f"unknown method(s): {', '.join(unknown)}; known: "
            f"{', '.join(m.name for m in known_methods.METHODS)} (and gray, always included)",
            param_hint="--methods",
        )
    if not names:
        click.echo("no --methods given: scoring the gray baseline alone", err=True)
    config = EvalConfig(
        methods=names,
        data=data,
        out=out,
        references=references,
        limit=limit,
        split=split,
        batch_size=batch_size,
        device=run_on,
        weights_dir=weights_dir or settings.weights_dir,
        eps=eps,
        samples=samples,
        progress=not no_progress,
        params=params,
        bf16=bf16,
        environment=run_environment(),
        weights=_own_weights(own_weights),
    )
    try:
        result = run_evaluation(config, log=click.echo)
    except (EvaluationError, Unavailable) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo((out / "summary.md").read_text(encoding="utf-8"))
    for name, path in result.files.items():
        click.echo(f"{name}: {path}")
    # as `colorize`: a run that left photos out, or scored none, did not do all it was asked (exit 1)
    missed = len(result.skipped_unreadable) + sum(len(v) for v in result.skipped_reference.values())
    if result.evaluated == 0 or missed:
        what = "no photo could be evaluated" if result.evaluated == 0 else f"{missed} left out"
        raise click.ClickException(f"{what} (see above); the results written are in {out}")


def run_environment() -> dict[str, str]:
    """What an evaluation ran on, for its run.json: the versions that decide its numbers and the code's
    commit (with "+changes" when the checkout has uncommitted ones), where it runs from a git checkout."""
    import platform
    import subprocess
    from importlib.metadata import version

    found = {"python": platform.python_version(), "machine": platform.machine()}
    for package in ("colorlab", "torch", "numpy", "pillow"):
        try:
            found[package] = version(package)
        except Exception:  # not installed as a distribution (a source tree on sys.path)
            found[package] = "unknown"
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
        found["commit"] = commit + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        found["commit"] = "unknown (not a git checkout)"
    return found


def _own_weights(given: tuple[str, ...]) -> dict[str, Path]:
    """``--weights NAME=PATH`` as weight file name -> path: NAME a trained method's weight file, PATH a
    ColorLab weights file of that arch (a usage error otherwise, before anything runs)."""
    from worker.colorizers import methods as known_methods
    from worker.colorizers.nets.weights_file import load_weights

    trained = sorted({w.name for m in known_methods.METHODS for w in m.weights if w.bundled})
    found: dict[str, Path] = {}
    for text in given:
        name, sep, path_text = text.partition("=")
        if not sep or not name or not path_text:
            raise click.BadParameter(f"{text!r}: expected NAME=PATH", param_hint="--weights")
        if name not in trained:
            raise click.BadParameter(
                f"{name!r} is not a trained method's weight file (those: {', '.join(trained)})",
                param_hint="--weights",
            )
        path = Path(path_text)
        try:
            load_weights(path, name)
        except ValueError as exc:  # says which file
            raise click.BadParameter(str(exc), param_hint="--weights") from None
        except OSError as exc:
            raise click.BadParameter(f"{path}: {exc.strerror or exc}", param_hint="--weights") from None
        found[name] = path
    return found
