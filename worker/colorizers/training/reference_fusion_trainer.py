"""Training ``reference-fusion`` (:mod:`worker.colorizers.nets.reference_fusion`), the learned last step of
``unet-bins-reference``, over the committed and frozen ``unet-bins``.

- Pairs: from the ``colour-photos`` *training* split only, grouped by source and original class or scene
  (:func:`worker.colorizers.datasets.colour_photos_groups`): a source, then a group, then two of its photos
  (target and reference), so that no source dominates; ``self_share`` of the pairs take the target itself,
  mirrored, as the reference (the fusion must follow a reference whose colours are right).
- Inputs: each pair goes once through the frozen net and the matching
  (:func:`worker.colorizers.reference_guided.fusion_sources`, at the serving size); a random ``crop`` ×
  ``crop`` window (at 1/4 resolution) of what the fusion's inputs are made from (the decoder's features,
  the matched colours, the match's confidence, the lightness) is kept in float16 in a cache file beside the
  output, the reference's palette in a second one, both reused while the pairs' settings stay the same. The
  logits and the prior are recomputed per batch as serving does
  (:func:`~worker.colorizers.reference_guided.inputs_from_sources`), so the cache is an eighth of their size:
  16,000 pairs take 4 GB.
- Loss: what the AuC measures, the ab distance to the truth capped at 150, averaged over pixels, plus
  ``chroma_weight`` × |mean chroma of the result − mean chroma of the truth| per crop, so that the fusion
  does not buy AuC by washing the colours out (at 0.3 the results stay as colourful as the hand-made
  rule's on the benchmark pairs; without it they lose about a tenth of their colourfulness). Adam, batch
  ``batch``, a random ``train_crop`` × ``train_crop`` part of each window per step, flipped left-right at
  random; a fixed number of epochs (the validation photos are never seen; the benchmark pairs judge the
  result).
- Stopping and going on: Ctrl+C or SIGTERM stops between pairs while preparing (the cache keeps the pairs
  done, and a later run prepares only the rest) and between steps while training (the checkpoint beside the
  output keeps the step, the optimiser and the random state; ``resume`` goes on from it exactly as the
  uninterrupted run would). A checkpoint is also written after each epoch.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from worker.colorizers.correspondence import RECIPE as MATCH_RECIPE
from worker.colorizers.datasets import ImageReader, ImageRef, colour_photos_groups
from worker.colorizers.lab import rgb_to_lab
from worker.colorizers.nets.reference_fusion import ARCH, ReferenceFusion, decode_fused
from worker.colorizers.nets.unet_bins import UNetBins
from worker.colorizers.nets.weights_file import save_weights
from worker.colorizers.reference_guided import (
    FusionSources,
    fuse,
    fusion_sources,
    inputs_from_sources,
    serving_tensors,
)
from worker.colorizers.training.checkpoint import load_checkpoint, refuse_changed_options, save_checkpoint
from worker.colorizers.training.interrupt import TrainingInterrupted, stop_requests

AUC_CAP = 150.0  # the AuC's largest threshold (Lab units)


@dataclass(frozen=True)
class FusionTrainConfig:
    data: Path  # the colour-photos folder (MANIFEST.csv, train/)
    out: Path
    pairs: int = 6400
    self_share: float = 0.25
    crop: int = 40  # cached window, at 1/4 of the serving size: 160 px, the whole short side
    train_crop: int = 40  # a random part of each window per step (smaller: cheaper, another view each epoch)
    epochs: int = 4
    batch: int = 32
    lr: float = 1e-3
    chroma_weight: float = 0.3
    seed: int = 0
    threads: int = 2
    resume: bool = False  # go on from the checkpoint when there is one
    checkpoint: Path | None = None  # default: <out name>.ckpt beside the weights

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint or self.out.with_suffix(".ckpt")

    @property
    def cache(self) -> Path:
        """Shared by the runs that write to the same folder (the stamp beside it says for which pairs)."""
        return self.out.parent / f"{ARCH}.sources.npy"

    @property
    def palette_cache(self) -> Path:
        return self.out.parent / f"{ARCH}.palettes.npy"


@dataclass(frozen=True)
class Pair:
    target: str  # relative to the colour-photos folder
    reference: str | None  # None: the target itself, mirrored


def training_pairs(data: Path, count: int, self_share: float, seed: int) -> list[Pair]:
    """``count`` same-class pairs of training photos (see the module docstring); deterministic in ``seed``."""
    if not (data / "MANIFEST.csv").is_file():
        raise ValueError(f"{data}: no MANIFEST.csv here (is it the colour-photos folder?)")
    rng = random.Random(seed)
    groups = {key: files for key, files in colour_photos_groups(data, "train").items() if len(files) >= 2}
    if not groups:
        raise ValueError(f"{data}: no class with two training photos (is it the colour-photos folder?)")
    by_source: dict[str, list[tuple[str, str]]] = {}
    for key in groups:
        by_source.setdefault(key[0], []).append(key)
    sources = sorted(by_source)
    pairs = []
    for _ in range(count):
        key = rng.choice(by_source[rng.choice(sources)])
        target, reference = rng.sample(groups[key], 2)
        pairs.append(Pair(target, None if rng.random() < self_share else reference))
    return pairs


@torch.no_grad()
def pair_sources(
    net: UNetBins, target_rgb: np.ndarray, reference_rgb: np.ndarray
) -> tuple[FusionSources, torch.Tensor]:
    """The fusion's sources for one pair as serving computes them, and the target's true ab at their size."""
    lab = rgb_to_lab(target_rgb).astype(np.float32)
    photo_l, net_input, ref_lab = serving_tensors(lab[..., 0], reference_rgb)
    sources, _ = fusion_sources(net, net_input, photo_l, ref_lab)
    truth = torch.from_numpy(np.ascontiguousarray(lab[..., 1:])).permute(2, 0, 1)[None]
    return sources, F.interpolate(truth, size=sources.decoded.shape[-2:], mode="area")


# The per-location sources in the cache's channel order (then the truth's ab); the palette is cached apart.
CACHED_FIELDS = ("decoded", "matched_ab", "confidence", "lightness")
# Channels after the decoder's features: matched ab, confidence, lightness, then the truth's ab.
TRAILING_CHANNELS = (2, 1, 1, 2)


def _read_stamp(stamp: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(stamp.read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def build_cache(
    net: UNetBins, config: FusionTrainConfig, show_progress: bool, stop_signal: Callable[[], int | None]
) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, channels, crop, crop) float16 per-location sources + truth and (pairs, levels, Q) float32
    palettes, computed once and memory-mapped. The stamp beside the cache records its settings and how many
    pairs are done: a preparation stopped by a signal goes on where it stopped."""
    pairs = training_pairs(config.data, config.pairs, config.self_share, config.seed)
    stamp = config.cache.with_suffix(".json")
    settings = {
        "pairs": [asdict(p) for p in pairs],
        "crop": config.crop,
        "net_bins": int(net.num_bins),
        "match": MATCH_RECIPE,  # a cache of colours transferred another way is not reused
        "windows": "per pair",  # each pair's window from its own seed, so a preparation can go on
    }
    recorded = _read_stamp(stamp)
    cache: np.memmap | None = None
    palettes: np.memmap | None = None
    done = 0
    if config.cache.is_file() and config.palette_cache.is_file() and recorded.get("settings") == settings:
        done = int(recorded.get("prepared", 0))
        if done >= len(pairs):
            return np.load(config.cache, mmap_mode="r"), np.load(config.palette_cache, mmap_mode="r")
        cache = np.load(config.cache, mmap_mode="r+")
        palettes = np.load(config.palette_cache, mmap_mode="r+")
    reader = ImageReader()
    bar = tqdm(pairs, desc="pair sources", disable=not show_progress, initial=done, total=len(pairs))
    for i, pair in enumerate(pairs[done:], start=done):
        if cache is not None and palettes is not None and (signum := stop_signal()) is not None:
            bar.close()
            cache.flush()
            palettes.flush()
            stamp.write_text(json.dumps({"settings": settings, "prepared": i}))
            raise TrainingInterrupted(signum, config.cache, f"{i} of {len(pairs)} pairs prepared")
        rng = random.Random(config.seed * 1_000_003 + i)
        target = reader.read(ImageRef(str(config.data / pair.target)))
        reference = (
            target[:, ::-1].copy()
            if pair.reference is None
            else reader.read(ImageRef(str(config.data / pair.reference)))
        )
        sources, truth = pair_sources(net, target, reference)
        stacked = torch.cat([*(getattr(sources, name) for name in CACHED_FIELDS), truth], dim=1)[0]
        height, width = stacked.shape[-2:]
        if min(height, width) < config.crop:
            raise ValueError(
                f"{pair.target}: {height}x{width} at 1/4 size, smaller than the crop {config.crop}"
            )
        y, x = rng.randint(0, height - config.crop), rng.randint(0, width - config.crop)
        window = stacked[:, y : y + config.crop, x : x + config.crop].half().numpy()
        if cache is None or palettes is None:
            config.cache.parent.mkdir(parents=True, exist_ok=True)
            stamp.unlink(missing_ok=True)  # the stamp comes back with the pairs done
            cache = np.lib.format.open_memmap(
                config.cache, mode="w+", dtype=np.float16, shape=(len(pairs), *window.shape)
            )
            palettes = np.lib.format.open_memmap(
                config.palette_cache,
                mode="w+",
                dtype=np.float32,
                shape=(len(pairs), *sources.palette.shape[1:]),
            )
        cache[i] = window
        palettes[i] = sources.palette[0].numpy()
        bar.update()
    bar.close()
    assert cache is not None and palettes is not None
    cache.flush()
    palettes.flush()
    stamp.write_text(json.dumps({"settings": settings, "prepared": len(pairs)}))
    return np.load(config.cache, mmap_mode="r"), np.load(config.palette_cache, mmap_mode="r")


def check_train_crop(size: int, height: int, width: int) -> None:
    if size > min(height, width):
        raise ValueError(f"train_crop {size} is larger than the cached windows ({height}x{width})")


def random_crops(batch: torch.Tensor, size: int, rng: np.random.Generator) -> torch.Tensor:
    """A random ``size`` × ``size`` part of each window of ``batch`` (N, C, H, W), flipped left-right at
    random."""
    height, width = batch.shape[-2:]
    check_train_crop(size, height, width)
    parts = []
    for window in batch:
        y, x = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
        part = window[:, y : y + size, x : x + size]
        parts.append(part.flip(-1) if rng.random() < 0.5 else part)
    return torch.stack(parts)


def fusion_loss(ab: torch.Tensor, truth: torch.Tensor, chroma_weight: float) -> torch.Tensor:
    """Capped ab distance (the AuC's) + the per-crop mean-chroma gap (see the module docstring)."""
    distance = (ab - truth).norm(dim=1).clamp(max=AUC_CAP).mean()
    chroma_gap = (ab.norm(dim=1).mean(dim=(1, 2)) - truth.norm(dim=1).mean(dim=(1, 2))).abs().mean()
    return distance + chroma_weight * chroma_gap


def split_channels(
    batch: torch.Tensor, palettes: torch.Tensor, features: int
) -> tuple[FusionSources, torch.Tensor]:
    """A cached batch back into :class:`FusionSources` (channels in :data:`CACHED_FIELDS` order) and the
    truth."""
    decoded, matched_ab, confidence, lightness, truth = torch.split(
        batch, [features, *TRAILING_CHANNELS], dim=1
    )
    return FusionSources(decoded, matched_ab, confidence, lightness, palettes), truth


# The options that define a run: a resume must keep them (the epochs and the threads may change).
RUN_OPTIONS = ("data", "pairs", "self_share", "crop", "train_crop", "batch", "lr", "chroma_weight", "seed")


def train(config: FusionTrainConfig, net: UNetBins, show_progress: bool = True) -> dict[str, Any]:
    """Train the fusion over the frozen ``net``; writes ``config.out`` and its card; returns the meta.
    :class:`TrainingInterrupted` when a signal stopped it (see the module docstring)."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    check_train_crop(config.train_crop, config.crop, config.crop)  # before the long preparation
    checkpoint = config.checkpoint_path
    state = load_checkpoint(checkpoint) if config.resume and checkpoint.is_file() else None
    if state is not None:  # refused before the preparation, not after it
        if state.get("arch") != ARCH:
            raise ValueError(f"{checkpoint} is a {state.get('arch')} checkpoint, not {ARCH}")
        refuse_changed_options(checkpoint, state["config"], asdict(config), RUN_OPTIONS)
    start = time.perf_counter() - (state["elapsed"] if state else 0.0)
    net = net.eval()
    with stop_requests() as stop_signal:  # Ctrl+C / SIGTERM: stop between pairs or steps, say how to go on
        cache, palettes = build_cache(net, config, show_progress, stop_signal)
        prepared = state["prepare_s"] if state else time.perf_counter() - start
        features = cache.shape[1] - sum(TRAILING_CHANNELS)
        fusion = ReferenceFusion(features=features)
        optimiser = torch.optim.Adam(fusion.parameters(), lr=config.lr)
        bins = net.bins.float()
        rng = np.random.default_rng(config.seed)
        history: list[dict[str, float]] = []
        steps = len(cache) // config.batch
        epoch, step, total, order = 0, 0, 0.0, None
        if state is not None:
            fusion.load_state_dict(state["fusion"])
            optimiser.load_state_dict(state["optimiser"])
            rng.bit_generator.state = state["rng"]
            torch.set_rng_state(state["torch_rng"])
            history, epoch, step, total = state["history"], state["epoch"], state["step"], state["loss_sum"]
            order = state["order"]

        def save(order_now: np.ndarray | None) -> None:
            save_checkpoint(
                checkpoint,
                {
                    "arch": ARCH,
                    "epoch": epoch,  # the epoch under way (0-based) and its steps done
                    "step": step,
                    "loss_sum": total,
                    "order": order_now,
                    "fusion": fusion.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "elapsed": time.perf_counter() - start,
                    "prepare_s": prepared,
                    "config": {k: str(v) for k, v in asdict(config).items()},
                },
            )

        while epoch < config.epochs:
            if order is None:
                order = rng.permutation(len(cache))
            bar = tqdm(
                total=steps, initial=step, desc=f"epoch {epoch + 1}", disable=not show_progress, unit="step"
            )
            while step < steps:
                index = np.sort(order[step * config.batch : (step + 1) * config.batch])
                batch = random_crops(
                    torch.from_numpy(np.asarray(cache[index])).float(), config.train_crop, rng
                )
                sources, truth = split_channels(
                    batch, torch.from_numpy(np.asarray(palettes[index])), features
                )
                with torch.no_grad():
                    inputs = inputs_from_sources(net, sources)
                fused = fuse(fusion, inputs)
                loss = fusion_loss(decode_fused(fused, bins), truth, config.chroma_weight)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item()
                step += 1
                bar.update()
                if step < steps and (signum := stop_signal()) is not None:
                    bar.close()
                    save(order)
                    raise TrainingInterrupted(
                        signum, checkpoint, f"epoch {epoch + 1}'s first {step} of {steps} steps"
                    )
            bar.close()
            history.append({"epoch": epoch + 1, "loss": total / max(steps, 1)})
            epoch, step, total, order = epoch + 1, 0, 0.0, None
            save(None)
            if epoch < config.epochs and (signum := stop_signal()) is not None:
                raise TrainingInterrupted(signum, checkpoint, f"the end of epoch {epoch}")
    meta = {
        "arch": ARCH,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "history": history,
        "prepare_s": prepared,
        "wall_time_s": time.perf_counter() - start,
        "machine": f"{platform.machine()} cpu, torch {torch.__version__}, {config.threads} threads",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "parameters": sum(p.numel() for p in fusion.parameters()),
    }
    save_weights(config.out, ARCH, fusion.state_dict(), {"features": features}, meta)
    write_fusion_card(config.out.with_suffix(".md"), meta)
    return meta


def write_fusion_card(path: Path, meta: dict[str, Any]) -> None:
    config = meta["config"]
    part = config.get("train_crop", config["crop"])
    sub_crop = f", a random {part}×{part} part of it per step" if part < config["crop"] else ""
    lines = [
        f"# Model card: `{ARCH}`",
        "",
        "- What: the learned last step of `unet-bins-reference` "
        "(worker/colorizers/nets/reference_fusion.py): per location, the reference prior's exponent "
        "α ∈ [0, 2], the annealed mean's temperature and a chroma factor, from the frozen `unet-bins`' "
        "decoder features, the entropies of its distribution and of the prior, their overlap, the match's "
        "confidence and the lightness (plus their mean over the photo).",
        f"- Weights: `{Path(config['out']).name}` (float16 state_dict, {meta['parameters']:,} parameters)",
        f"- Data: {config['pairs']} pairs of `colour-photos` training photos of the same class or scene "
        f"({config['self_share']:.0%} with the target's own mirrored colours), one random "
        f"{config['crop']}×{config['crop']} window at 1/4 of the serving size each{sub_crop}; never a "
        "validation photo.",
        f"- Loss: ab distance to the truth capped at {AUC_CAP:.0f} (what the AuC measures) + "
        f"{config['chroma_weight']} × the per-crop mean-chroma gap; Adam lr {config['lr']}, batch "
        f"{config['batch']}, {config['epochs']} epochs, random flips, seed {config['seed']}.",
        f"- Trained by: `colorlab train --arch reference-fusion --data {config['data']} "
        f"--pairs {config['pairs']} --epochs {config['epochs']} --out {config['out']}`",
        f"- Wall time: {meta['wall_time_s'] / 60:.1f} min ({meta['prepare_s'] / 60:.1f} min preparing the "
        f"pairs) on {meta['machine']}; {meta['date']}",
        "- Judged on: `benchmarks/reference_pairs.csv` (validation photos), `benchmarks/bench_reference.py`; "
        "figures in benchmarks/RESULTS.md.",
        "",
        "| epoch | training loss |",
        "|---:|---:|",
        *(f"| {row['epoch']} | {row['loss']:.3f} |" for row in meta["history"]),
        "",
    ]
    path.write_text("\n".join(lines))
