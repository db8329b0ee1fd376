"""The training loop: epochs with a tqdm bar (loss, ETA), validation, early stopping, checkpoint and resume.

Each epoch: train on random crops and flips of the training split, validate on centre crops of the
validation split (never trained on; see :func:`worker.colorizers.datasets.split_paths`), save a resumable
checkpoint, and export the weights (float16) plus their model card when the monitored validation figure
improves (cnn, fusion: MSE; gan: L1 of ab/128, never stopping early by default). Ctrl+C or SIGTERM saves
the epoch under way too (its batches done so far): a resume goes on from the next batch, as if uninterrupted.
"""

from __future__ import annotations

import datetime as dt
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from worker.colorizers.datasets import VALIDATION_MODULUS, VALIDATION_RESIDUE, PhotoDataset, split_paths
from worker.colorizers.nets.weights_file import load_weights, refresh_meta, save_weights
from worker.colorizers.training.card import write_card
from worker.colorizers.training.checkpoint import (
    load_checkpoint,
    refuse_changed_options,
    restore_torch_rng_states,
    save_checkpoint,
    torch_rng_states,
)
from worker.colorizers.training.early_stopping import EarlyStopping
from worker.colorizers.training.interrupt import TrainingInterrupted, stop_requests
from worker.colorizers.training.recipes import DEFAULTS, Recipe, lab_batch, make_recipe
from worker.colorizers.training.validation import ValidationStats

DESCRIPTIONS = {
    "cnn": "report §5.2 encoder/decoder CNN, MSE loss",
    "fusion": "report §5.3 encoder/decoder fused with EfficientNet-Lite0 ImageNet class probabilities, "
    "MSE loss",
    "gan": "report §5.4 U-Net generator + DCGAN discriminator, L1 + non-saturating adversarial loss",
}


@dataclass
class TrainConfig:
    arch: str
    data: str
    out: Path
    epochs: int = 25
    batch_size: int | None = None  # None: the report's default for the arch
    lr: float | None = None
    patience: int | None = None  # epochs without validation improvement; 0 = never stop early
    size: int = 256
    max_zoom: float = 1.25
    limit: int | None = None  # use at most this many training photos (and limit // 4 validation photos)
    resume: bool = False
    checkpoint: Path | None = None  # default: <out name>.ckpt beside the weights (see resolve())
    seed: int = 0
    device: str = "cpu"
    max_minutes: float | None = None  # stop after the epoch that passes this much of this invocation's time
    bf16: bool = False  # bfloat16 autocast for forward passes (weights and optimiser stay float32)
    init_from: Path | None = None  # start from these exported weights (fusion: also from cnn weights)
    gan_l1_weight: float = 100.0  # λ of the generator's L1 term (Nazeri et al.: 100)
    gan_real_label: float = 1.0  # discriminator target for real photos (0.9 = one-sided label smoothing)
    command: str = ""
    extra_meta: dict[str, Any] = field(default_factory=dict)

    def resolve(self) -> TrainConfig:
        defaults = DEFAULTS[self.arch]
        if self.batch_size is None:
            self.batch_size = int(defaults["batch_size"])
        if self.lr is None:
            self.lr = float(defaults["lr"])
        if self.patience is None:
            self.patience = int(defaults["patience"])
        if self.size % 32 and self.arch == "gan":
            raise ValueError("--size must be a multiple of 32 for the gan")
        if self.size % 8:
            raise ValueError("--size must be a multiple of 8")
        self.out = Path(self.out)
        if self.checkpoint is None:  # beside the weights: two runs' checkpoints never meet
            self.checkpoint = self.out.with_suffix(".ckpt")
        return self


# The options that define a run: a resume must keep them (the epochs, the patience, the time budget and the
# device may change).
FEEDFORWARD_RUN_OPTIONS = (
    "data", "batch_size", "lr", "size", "max_zoom", "limit", "seed", "bf16", "gan_l1_weight", "gan_real_label"
)  # fmt: skip


@dataclass
class TrainResult:
    weights: Path
    card: Path
    epochs_run: int
    best_epoch: int
    validation: dict[str, float]
    wall_time_s: float
    stop_reason: str


def _loader(dataset: PhotoDataset, batch_size: int, shuffle: bool, seed: int) -> torch.utils.data.DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=gen, drop_last=False
    )


def epoch_batches(
    dataset: PhotoDataset, batch_size: int, seed: int, skip_batches: int = 0
) -> torch.utils.data.DataLoader:
    """One training epoch's batches in an order drawn from ``seed`` alone, from batch ``skip_batches`` on:
    a run resumed mid-epoch skips the batches it has trained on without decoding them. The loader has a
    generator of its own, so starting it draws nothing from the global RNG (the augmentations' stream)."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=order[skip_batches * batch_size :],
        generator=torch.Generator().manual_seed(seed),
        drop_last=False,
    )


def validate(
    recipe: Recipe, loader: torch.utils.data.DataLoader, device: str
) -> tuple[dict[str, float], dict[str, float]]:
    """(model figures, gray ab = 0 figures) on the validation loader."""
    recipe.train(False)
    stats, gray = ValidationStats(), ValidationStats()
    with torch.no_grad():
        for rgb, index in loader:
            lightness, ab = lab_batch(rgb.to(device))
            pred = recipe.predict(lightness, index, "val")
            stats.add(lightness, ab, pred)
            gray.add(lightness, ab, torch.zeros_like(ab))
    recipe.train(True)
    return stats.result(), gray.result()


def train(config: TrainConfig, *, show_progress: bool = True) -> TrainResult:
    """Train ``config.arch`` on ``config.data``; returns where the weights and card went and the figures."""
    cfg = config.resolve()
    assert cfg.batch_size is not None and cfg.patience is not None and cfg.checkpoint is not None
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    split = split_paths(cfg.data)
    train_refs, val_refs = split.train, split.val
    if cfg.limit:
        rng = random.Random(cfg.seed)
        train_refs = sorted(rng.sample(train_refs, min(cfg.limit, len(train_refs))), key=lambda r: r.name)
        val_refs = sorted(
            rng.sample(val_refs, min(max(cfg.limit // 4, 1), len(val_refs))), key=lambda r: r.name
        )
    if not train_refs or not val_refs:
        raise ValueError(
            f"{cfg.data}: need training and validation photos (found {len(train_refs)} and {len(val_refs)})"
        )
    train_set = PhotoDataset(train_refs, cfg.size, train=True, max_zoom=cfg.max_zoom)
    val_set = PhotoDataset(val_refs, cfg.size, train=False)
    options = {"l1_weight": cfg.gan_l1_weight, "real_label": cfg.gan_real_label} if cfg.arch == "gan" else {}
    recipe = make_recipe(cfg.arch, lr=cfg.lr, device=cfg.device, **options)
    recipe.bf16 = cfg.bf16
    if cfg.init_from is not None and not (cfg.resume and cfg.checkpoint.is_file()):
        recipe.init_from(load_weights(Path(cfg.init_from)))
    recipe.prepare([train_set, val_set], cache_dir=cfg.checkpoint.parent)
    stopper = EarlyStopping(cfg.patience)
    history: list[dict[str, float]] = []
    start_epoch, elapsed = 0, 0.0
    best_val: dict[str, dict[str, float]] = {}
    # the epoch under way when a signal stopped the run: its index, batches trained on and their loss sum
    partial: dict[str, float] | None = None
    if cfg.resume and cfg.checkpoint.is_file():
        state = load_checkpoint(cfg.checkpoint)  # on the CPU: the RNG state must stay there
        if state["arch"] != cfg.arch:
            raise ValueError(f"{cfg.checkpoint} is a {state['arch']} checkpoint, not {cfg.arch}")
        refuse_changed_options(cfg.checkpoint, state.get("config", {}), asdict(cfg), FEEDFORWARD_RUN_OPTIONS)
        for name, net in recipe.nets.items():
            net.load_state_dict(state["nets"][name])
        for name, opt in recipe.optims.items():
            opt.load_state_dict(state["optims"][name])
        stopper.load_state_dict(state["early_stopping"])
        history, start_epoch, elapsed = state["history"], state["epoch"] + 1, state["elapsed"]
        best_val = state.get("best_val", {})
        partial = state.get("partial")
        if partial is not None:
            start_epoch = int(partial["epoch"])
        random.setstate(state["py_rng"])
        restore_torch_rng_states(state, cfg.device)
    val_loader = _loader(val_set, cfg.batch_size, False, 0)
    card_path = cfg.out.with_suffix(".md")
    stop_reason = "training in progress"
    t0 = time.time() - elapsed
    began = time.time()  # --max-minutes is this invocation's: a resumed run has a budget of its own
    checkpoint = cfg.checkpoint

    def save_state(epochs_done: int, under_way: dict[str, float] | None) -> None:
        save_checkpoint(
            checkpoint,
            {
                "arch": cfg.arch,
                "epoch": epochs_done - 1,
                "partial": under_way,
                "nets": {k: v.state_dict() for k, v in recipe.nets.items()},
                "optims": {k: v.state_dict() for k, v in recipe.optims.items()},
                "early_stopping": stopper.state_dict(),
                "history": history,
                "elapsed": time.time() - t0,
                "best_val": best_val,
                "py_rng": random.getstate(),
                **torch_rng_states(cfg.device),
                "config": {k: str(v) for k, v in asdict(cfg).items()},
            },
        )

    per_epoch = -(-len(train_set) // cfg.batch_size)
    epoch = start_epoch - 1
    with stop_requests() as stop_signal:  # Ctrl+C / SIGTERM: stop between batches, say how to go on
        for epoch in range(start_epoch, cfg.epochs):
            recipe.train(True)
            total, batches = 0.0, 0
            if partial is not None:  # resumed mid-epoch: go on from the next batch
                total, batches, partial = float(partial["loss_sum"]), int(partial["batches"]), None
            # each epoch's order from the seed and the epoch alone: a resumed run sees the photos an
            # uninterrupted one would
            train_loader = epoch_batches(train_set, cfg.batch_size, cfg.seed + epoch, batches)
            bar = tqdm(
                train_loader,
                desc=f"{cfg.arch} epoch {epoch + 1}/{cfg.epochs}",
                disable=not show_progress,
                unit="batch",
                initial=batches,
                total=per_epoch,
            )
            for rgb, index in bar:
                losses = recipe.train_step(rgb, index)
                total += losses["loss"]
                batches += 1
                bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()})
                # checked after a step, before the loader decodes the next batch (which draws the RNG)
                if batches < per_epoch and (signum := stop_signal()) is not None:
                    bar.close()
                    save_state(epoch, {"epoch": epoch, "batches": batches, "loss_sum": total})
                    done = f"epoch {epoch + 1}'s first {batches} of {per_epoch} batches"
                    raise TrainingInterrupted(signum, cfg.checkpoint, done)
            val, gray = validate(recipe, val_loader, cfg.device)
            monitored = val[recipe.monitor]
            improved = stopper.update(monitored, epoch + 1)
            history.append({"epoch": epoch + 1, "train_loss": total / max(batches, 1), "val": monitored})
            if show_progress:
                tqdm.write(
                    f"epoch {epoch + 1}: train loss {total / max(batches, 1):.5f}  "
                    f"val {recipe.monitor} {monitored:.5f} "
                    f"(gray {gray[recipe.monitor]:.5f})  auc {val['auc']:.4f}  psnr {val['psnr']:.2f}  "
                    f"chroma {val['chroma']:.2f}{'  *' if improved else ''}"
                )
            export_now = improved  # the exported weights are always the best epoch on validation
            if export_now:
                best_val = {cfg.arch: val, "gray (ab = 0)": gray}
            best_epoch = stopper.best_epoch
            wall = time.time() - t0
            over = cfg.max_minutes is not None and time.time() - began > cfg.max_minutes * 60
            stop = stopper.should_stop or over
            if stopper.should_stop:
                stop_reason = f"early stop: {cfg.patience} epochs without validation improvement"
            elif stop:
                stop_reason = f"wall-time budget of {cfg.max_minutes:g} min reached"
            elif epoch + 1 == cfg.epochs:
                stop_reason = "all epochs run"
            meta = _meta(
                cfg, recipe, train_refs, val_refs, epoch + 1, best_epoch, wall, best_val, history, stop_reason
            )
            if export_now:
                exported = recipe.export()
                save_weights(cfg.out, exported["arch"], exported["state_dict"], exported["config"], meta)
            elif cfg.out.is_file():  # the best epoch's weights, with the run's record as it stands now
                refresh_meta(cfg.out, meta)
            write_card(card_path, meta)
            save_state(epoch + 1, None)
            if stop:
                break
            if (signum := stop_signal()) is not None:
                raise TrainingInterrupted(signum, cfg.checkpoint, f"the end of epoch {epoch + 1}")
    wall = time.time() - t0
    return TrainResult(
        cfg.out,
        card_path,
        epoch + 1,
        stopper.best_epoch,
        best_val.get(cfg.arch, {}),
        wall,
        stop_reason,
    )


def _meta(
    cfg: TrainConfig,
    recipe: Recipe,
    train_refs: list,
    val_refs: list,
    epochs_run: int,
    best_epoch: int,
    wall: float,
    validation: dict,
    history: list,
    stop_reason: str,
) -> dict[str, Any]:
    exported_net = next(iter(recipe.nets.values()))
    return {
        "arch": cfg.arch,
        "description": DESCRIPTIONS[cfg.arch],
        "weights_file": cfg.out.name,
        "parameters": sum(p.numel() for p in exported_net.parameters()),
        "command": cfg.command or f"colorlab train --arch {cfg.arch} --data {cfg.data}",
        "data": str(cfg.data),
        "train_photos": len(train_refs),
        "val_photos": len(val_refs),
        "split": "worker.colorizers.datasets.split_paths: validation = ImageNet classes with index "
        f"% {VALIDATION_MODULUS} == {VALIDATION_RESIDUE}",
        "hyperparameters": {
            "optimizer": "Adam" + (" (β1 0.5)" if cfg.arch == "gan" else ""),
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "patience": cfg.patience,
            "size": cfg.size,
            "max_zoom": cfg.max_zoom,
            "seed": cfg.seed,
            "bf16_autocast": cfg.bf16,
            "init_from": str(cfg.init_from) if cfg.init_from else "random",
            **(
                {"l1_weight": cfg.gan_l1_weight, "real_label": cfg.gan_real_label}
                if cfg.arch == "gan"
                else {}
            ),
        },
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "stop_reason": stop_reason,
        "wall_time_s": round(wall, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''} {cfg.device}, "
        f"torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads".replace("  ", " "),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "validation": validation,
        "monitor": recipe.monitor,
        "history": history,
        **cfg.extra_meta,
    }
