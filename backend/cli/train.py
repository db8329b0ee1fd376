"""`colorlab train`: train a colorizer: cnn, fusion, gan (worker/colorizers/training/trainer.py),
unet-bins (worker/colorizers/training/unet_bins_trainer.py) or reference-fusion, the learned last step of
unet-bins-reference (worker/colorizers/training/reference_fusion_trainer.py)."""

from __future__ import annotations

import functools
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from backend.cli import FilePath, FiniteRange, checked_device, command_line, default_device, use_threads
from worker.colorizers.training.interrupt import TrainingInterrupted

ARCHS = ("cnn", "fusion", "gan", "unet-bins", "reference-fusion")
# The options each arch's trainer reads (by parameter name). One given that its arch does not read is
# refused: it used to be dropped silently (reference-fusion on the CPU whatever --device said).
_COMMON = {"arch", "data", "epochs", "batch_size", "lr", "out", "seed", "threads", "no_progress"}
_EPOCHS = _COMMON | {"size", "limit", "checkpoint", "resume", "max_minutes", "init_from", "device"}
_USES: dict[str, set[str]] = {
    "cnn": _EPOCHS | {"patience", "max_zoom", "bf16"},
    "fusion": _EPOCHS | {"patience", "max_zoom", "bf16"},
    "gan": _EPOCHS | {"patience", "max_zoom", "bf16", "l1_weight", "real_label"},
    "unet-bins": _EPOCHS | {"freeze_epochs", "checkpoint_minutes", "decay_steps"},
    "reference-fusion": _COMMON | {"pairs", "checkpoint", "resume"},
}


# What an arch does anyway, so that saying it is no error (reference-fusion always trains on the CPU).
_IMPLIED: dict[str, dict[str, object]] = {"reference-fusion": {"device": "cpu"}}


def _refuse_unused(ctx: click.Context, arch: str) -> None:
    """A usage error naming the options given (other than their defaults) that ``arch`` does not use."""
    unused = [
        max(param.opts, key=len)
        for param in ctx.command.params
        if param.name not in _USES[arch]
        and ctx.get_parameter_source(param.name or "") is click.core.ParameterSource.COMMANDLINE
        and ctx.params.get(param.name or "")
        not in (param.default, _IMPLIED.get(arch, {}).get(param.name or ""))
    ]
    if unused:
        raise click.UsageError(f"--arch {arch} does not use {', '.join(unused)}")


def _refuse_held_out(data: tuple[Path, ...]) -> None:
    """A usage error for a --data that is a data set's held-out split, or inside one: a folder named as the
    split names one (or testing/) with a train/ beside it (a checkout under some test/ folder is no split).
    Training on it would score the model on photos it learnt from."""
    from worker.colorizers.datasets import HELD_OUT_FOLDERS, TRAINING_FOLDERS

    for source in data:
        for folder in (source.resolve(), *source.resolve().parents):
            if folder.name.lower() not in HELD_OUT_FOLDERS | {"testing"}:
                continue
            beside = {p.name.lower() for p in folder.parent.iterdir() if p.is_dir()}
            if beside & TRAINING_FOLDERS:
                raise click.UsageError(
                    f"{source} is a held-out split ({folder.name}/): train on its train/ photos, or on the "
                    "folder that holds both (the validation split is then kept apart)"
                )


def _check_outputs(
    out: Path, checkpoint: Path | None, data: tuple[Path, ...], *, resume: bool = False
) -> None:
    """Refuse, before hours of training, outputs that would replace something that is not an earlier
    training's: a photo of --data, a file that is no weights file or model card, the weights as their own
    checkpoint, an unfinished run's checkpoint without --resume, or a folder that cannot be written."""
    card = out.with_suffix(".md")
    targets = [out, card] + ([checkpoint] if checkpoint else [])
    if checkpoint and checkpoint.exists() and not resume:
        raise click.UsageError(
            f"{checkpoint} holds an earlier run: add --resume to go on with it, or delete it (or choose "
            "another --out) to start again"
        )
    if checkpoint and resume and not checkpoint.exists():
        if out.exists():  # a typo in a path, or an older run's checkpoint elsewhere: its weights would go
            older = Path("var/train") / f"{out.stem}.ckpt"
            hint = f" (an earlier version kept it at {older}: give --checkpoint {older})"
            hint = hint if older.is_file() else ""
            raise click.UsageError(
                f"--resume: there is no checkpoint at {checkpoint}{hint}; without one the run would start "
                f"again and replace {out}"
            )
        click.echo(f"no checkpoint at {checkpoint}: starting a new run", err=True)
    if checkpoint and checkpoint.resolve() == out.resolve():
        raise click.UsageError("--out and --checkpoint name the same file: the weights would replace it")
    for target in targets:
        for source in data:  # a path is relative to itself: a zip given as --data counts too
            if target.resolve().is_relative_to(source.resolve()):
                raise click.UsageError(f"{target} is inside the training data {source}: write it elsewhere")
    if out.exists():
        from worker.colorizers.nets.weights_file import load_weights

        try:
            load_weights(out)
        except (OSError, ValueError):
            raise click.ClickException(  # a file it cannot use: exit 1, as every such one
                f"{out} exists and is not a ColorLab weights file: choose another --out (nothing is replaced)"
            ) from None
    if card.exists() and not card.read_bytes().startswith(b"# Model card"):
        raise click.ClickException(
            f"{card} (the model card's place) exists and is not one: choose another --out"
        )
    for target in targets:
        _check_writable(target)


def _check_writable(target: Path) -> None:
    """Make the target's folder and write a file there, as training will at its end: a parent that is a file,
    a read-only or virtual file system, and root's rights (for which os.access says yes to everything) are
    all found out now."""
    if target.is_dir():
        raise click.ClickException(f"{target} is a folder: give a file name for it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target.parent):
            pass
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise click.ClickException(
            f"{target.parent} cannot be written ({reason}): choose another place for {target.name}"
        ) from None


def _says_how_to_go_on(command: Callable[..., None]) -> Callable[..., None]:
    """A run stopped by Ctrl+C or SIGTERM (:class:`TrainingInterrupted`): what its checkpoint holds and the
    command that goes on from there; exit 128 + the signal's number (130, 143), as a shell reports it."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except TrainingInterrupted as stopped:
            line = command_line()
            again = line if "--resume" in sys.argv[1:] else f"{line} --resume"
            signal_name = "Ctrl+C" if stopped.signum == signal.SIGINT else "SIGTERM"
            held = f"{stopped.checkpoint} holds {stopped.saved}"
            click.echo(f"stopped by {signal_name}; {held}; go on with:\n  {again}", err=True)
            sys.exit(128 + stopped.signum)

    return run


@click.command("train")
@click.option("--arch", type=click.Choice(ARCHS), required=True, help="Which network to train.")
@click.option(
    "--data",
    required=True,
    multiple=True,
    type=FilePath(exists=True, path_type=Path),
    help="A folder of photos or a zip of photos (e.g. ../shared/data/imagenet-samples, "
    "../shared/data/cifar10.zip); the validation split is held out by class/folder. unet-bins takes "
    "several (repeat --data); reference-fusion takes the colour-photos folder (its MANIFEST.csv groups the "
    "training photos by class).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Default: 25 (reference-fusion 4).")
@click.option(
    "--pairs",
    type=click.IntRange(min=1),
    default=6400,
    show_default=True,
    help="reference-fusion: same-class pairs of training photos to learn from.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Default: the report's (cnn/fusion 50, gan 16); unet-bins and reference-fusion 32.",
)
@click.option(
    "--lr",
    type=FiniteRange(min=0, max=1, min_open=True),
    default=None,
    help="Adam learning rate. Default: cnn/fusion 1e-3, gan 2e-4 (β1 0.5), reference-fusion 1e-3; unet-bins: "
    "the decoder's while the encoder is frozen (1e-3; fine-tuning then uses 3e-4 and 5e-5 for the encoder).",
)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    default=None,
    help="Stop after this many epochs without validation improvement (0: never). Default: 3 (gan 0).",
)
@click.option(
    "--size",
    type=click.IntRange(min=8, max=1024),
    default=None,
    help="Training crop size (multiple of 8; of 32 for the gan and unet-bins). Default: 256; unet-bins 128 "
    "(the short side of colour-photos).",
)
@click.option(
    "--max-zoom",
    type=FiniteRange(min=1.0),
    default=1.25,
    show_default=True,
    help="Random crops come from the photo resized to a short side in [size, size × max-zoom].",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use at most N training photos.")
@click.option(
    "--out",
    type=FilePath(dir_okay=False, path_type=Path),
    default=None,
    help="Weights file to write (a model card .md goes beside it). Default: var/train/<arch>.pt",
)
@click.option(
    "--checkpoint",
    type=FilePath(dir_okay=False, path_type=Path),
    default=None,
    help="Resumable checkpoint. Default: beside --out, <out name>.ckpt (an existing one needs --resume).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Go on from the checkpoint (a new run when there is none yet). Ctrl+C or SIGTERM stops a run "
    "between steps and says what the checkpoint holds.",
)
@click.option(
    "--max-minutes",
    type=FiniteRange(min=0, min_open=True),
    default=None,
    help="Stop after the epoch (unet-bins: the step) that passes this many minutes of this run (a resumed "
    "run has a budget of its own).",
)
@click.option(
    "--bf16",
    is_flag=True,
    help="bfloat16 autocast for the forward passes (faster on CPUs with native bf16; weights stay fp32).",
)
@click.option(
    "--init-from",
    type=FilePath(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Start from exported weights (for fusion, trained cnn weights work: shared layers copied).",
)
@click.option(
    "--l1-weight",
    type=FiniteRange(min=0),
    default=100.0,
    show_default=True,
    help="gan: λ of the generator's L1 term (Nazeri et al. used 100).",
)
@click.option(
    "--real-label",
    type=FiniteRange(min=0.5, max=1.0),
    default=1.0,
    show_default=True,
    help="gan: discriminator target for real photos (0.9 = one-sided label smoothing).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**63 - 1),
    default=0,
    show_default=True,
    help="Random seed (data order, crops, initial weights): the same seed, the same run.",
)
@click.option(
    "--device",
    default=None,
    callback=checked_device,
    help="Torch device: auto (CUDA when present), cpu, cuda, cuda:0, ... Default: the DEVICE setting.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=0, max=256),
    default=0,
    help="Torch CPU threads (0: the TORCH_THREADS setting, or where that is 0 torch's default; "
    "reference-fusion 2).",
)
@click.option(
    "--freeze-epochs",
    type=FiniteRange(min=0),
    default=1.0,
    show_default=True,
    help="unet-bins: epochs with the ImageNet encoder frozen before everything is fine-tuned.",
)
@click.option(
    "--checkpoint-minutes",
    type=FiniteRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="unet-bins: write the resumable checkpoint at least this often (mid-epoch too).",
)
@click.option(
    "--decay-steps",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="unet-bins: cosine-decay the fine-tune learning rates to 5 % over this many steps (0: constant).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@_says_how_to_go_on
def train(
    arch: str,
    data: tuple[Path, ...],
    epochs: int | None,
    pairs: int,
    batch_size: int | None,
    lr: float | None,
    patience: int | None,
    size: int | None,
    max_zoom: float,
    limit: int | None,
    out: Path | None,
    checkpoint: Path | None,
    resume: bool,
    max_minutes: float | None,
    bf16: bool,
    init_from: Path | None,
    l1_weight: float,
    real_label: float,
    seed: int,
    device: str | None,
    threads: int,
    freeze_epochs: float,
    checkpoint_minutes: float,
    decay_steps: int,
    no_progress: bool,
) -> None:
    """Train a colorizer; writes the weights (float16), a model card and a resumable checkpoint."""

    _refuse_unused(click.get_current_context(), arch)
    _refuse_held_out(data)
    out = out or Path("var/train") / f"{arch}.pt"
    checkpoint = checkpoint or out.with_suffix(".ckpt")  # beside the weights: two runs' never meet
    _check_outputs(out, checkpoint, data, resume=resume)
    device = default_device(device)
    threads = use_threads(threads)
    command = command_line()
    if arch == "reference-fusion":
        _train_reference_fusion(
            data, out, checkpoint, resume, epochs or 4, pairs, batch_size, lr, seed, threads or 2, no_progress
        )
        return
    epochs = epochs or 25
    if arch == "unet-bins":
        _train_unet_bins(
            data,
            out,
            checkpoint,
            epochs,
            batch_size,
            lr,
            freeze_epochs,
            checkpoint_minutes,
            decay_steps,
            size or 128,
            limit,
            resume,
            max_minutes,
            init_from,
            seed,
            device,
            command,
            no_progress,
        )
        return
    if len(data) != 1:
        raise click.UsageError(f"--arch {arch} trains on one --data source")

    from worker.colorizers.training.trainer import TrainConfig
    from worker.colorizers.training.trainer import train as run_training

    config = TrainConfig(
        arch=arch,
        data=str(data[0]),
        out=out,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        size=size or 256,
        max_zoom=max_zoom,
        limit=limit,
        resume=resume,
        checkpoint=checkpoint,
        seed=seed,
        device=device,
        max_minutes=max_minutes,
        bf16=bf16,
        init_from=init_from,
        gan_l1_weight=l1_weight,
        gan_real_label=real_label,
        command=command,
    )
    try:
        result = run_training(config, show_progress=not no_progress)
    except (ValueError, FileNotFoundError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{result.stop_reason}; {result.epochs_run} epochs in {result.wall_time_s / 60:.1f} min; "
        f"best epoch {result.best_epoch}"
    )
    click.echo(", ".join(f"{k} {v:.4f}" for k, v in result.validation.items()))
    click.echo(f"weights: {result.weights}\ncard: {result.card}")


def _train_unet_bins(
    data: tuple[Path, ...],
    out: Path,
    checkpoint: Path | None,
    epochs: int,
    batch_size: int | None,
    lr: float | None,
    freeze_epochs: float,
    checkpoint_minutes: float,
    decay_steps: int,
    size: int,
    limit: int | None,
    resume: bool,
    max_minutes: float | None,
    init_from: Path | None,
    seed: int,
    device: str,
    command: str,
    no_progress: bool,
) -> None:
    from backend.config import get_settings
    from worker.colorizers.methods.unet_bins import MOBILENET_V2
    from worker.colorizers.training.unet_bins_trainer import BinsTrainConfig
    from worker.colorizers.training.unet_bins_trainer import train as run_training

    if size % 32:
        raise click.BadParameter("must be a multiple of 32 for unet-bins", param_hint="--size")
    encoder = MOBILENET_V2.path(get_settings().weights_dir)
    ckpt = checkpoint or out.with_suffix(".ckpt")
    if not encoder.is_file() and not init_from and not (resume and ckpt.is_file()):
        raise click.ClickException(f"the ImageNet encoder is missing: run `{MOBILENET_V2.fetch_command}`")
    config = BinsTrainConfig(
        data=[str(d) for d in data],
        out=out,
        encoder_weights=encoder,
        checkpoint=ckpt,
        cache_dir=get_settings().data_dir / "cache",
        epochs=epochs,
        freeze_epochs=freeze_epochs,
        batch_size=batch_size or 32,
        lr=lr or 1e-3,
        size=size,
        checkpoint_minutes=checkpoint_minutes,
        decay_steps=decay_steps,
        max_minutes=max_minutes,
        limit=limit,
        resume=resume,
        init_from=init_from,
        seed=seed,
        device=device,
        command=command,
    )
    try:
        result = run_training(config, show_progress=not no_progress)
    except (ValueError, FileNotFoundError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    best = result["best"]
    click.echo(f"{result['stop_reason']}; {result['step']} steps; best step {best.get('step')}")
    click.echo(", ".join(f"{k} {v:.4f}" for k, v in best.items() if k != "step"))
    click.echo(f"weights: {result['out']}")


def _train_reference_fusion(
    data: tuple[Path, ...],
    out: Path,
    checkpoint: Path,
    resume: bool,
    epochs: int,
    pairs: int,
    batch_size: int | None,
    lr: float | None,
    seed: int,
    threads: int,
    no_progress: bool,
) -> None:
    from backend.config import get_settings
    from worker.colorizers.loading import get_colorizer
    from worker.colorizers.nets.unet_bins import UNetBinsColorizer
    from worker.colorizers.training.reference_fusion_trainer import FusionTrainConfig
    from worker.colorizers.training.reference_fusion_trainer import train as run_training

    if len(data) != 1:  # the trainer says when it is not the colour-photos folder
        raise click.UsageError("--arch reference-fusion trains on one --data: the colour-photos folder")
    if pairs < (batch_size or 32):  # no whole batch: it would train nothing and say "loss 0.000"
        raise click.BadParameter(
            f"{pairs} pairs make no batch of {batch_size or 32}: give more, or a smaller --batch-size",
            param_hint="--pairs",
        )
    config = FusionTrainConfig(
        data=data[0],
        out=out,
        pairs=pairs,
        epochs=epochs,
        batch=batch_size or 32,
        lr=lr or 1e-3,
        seed=seed,
        threads=threads,
        resume=resume,
        checkpoint=checkpoint,
    )
    net = get_colorizer("unet-bins", get_settings().weights_dir, "cpu")
    assert isinstance(net, UNetBinsColorizer)
    try:
        meta = run_training(config, net.net, show_progress=not no_progress)
    except (ValueError, FileNotFoundError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{epochs} epochs in {meta['wall_time_s'] / 60:.1f} min; final training loss "
        f"{meta['history'][-1]['loss']:.3f}"
    )
    click.echo(f"weights: {config.out}\ncard: {config.out.with_suffix('.md')}")
