"""The evaluation runner behind ``colorlab evaluate`` (the package docstring says what is scored and how).

Outputs in ``out``: ``per_image.csv`` and ``per_image_curves.csv`` (resumable: image/method pairs present in
both are not recomputed), ``summary.csv``, ``summary.md``, ``curves.svg``/``curves.png`` (mean raw accuracy
curve per method), ``contact_sheet.png`` (gray | each method | truth, for ``samples`` photos spread over the
data set) and ``run.json`` (data, ε, each method's weights fingerprint and options: rows of changed ones are
redone).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from worker.colorizers import lab as labmod
from worker.colorizers import metrics
from worker.colorizers.evaluation import EvaluationError, figures, report, scoring
from worker.colorizers.evaluation.contestants import GRAY_BASELINE, Contestant, load_contestants
from worker.colorizers.evaluation.report import REAL
from worker.colorizers.evaluation.selection import (
    Photo,
    find_reference,
    is_grayscale,
    photo_rgb,
    select_photos,
    spread,
)
from worker.colorizers.evaluation.store import RowStore, check_run_file, sample_path
from worker.colorizers.pipeline import compose

if TYPE_CHECKING:
    from worker.colorizers.datasets import ImageReader


@dataclass(frozen=True)
class EvalConfig:
    methods: tuple[str, ...]  # without "gray" (always added)
    data: Path
    out: Path
    references: Path | None = None
    limit: int | None = None
    split: str = "all"  # "val" or "all" (zip files: always their test/ entries)
    batch_size: int = 16
    device: str = "cpu"
    weights_dir: Path = Path("var/weights")
    eps: float = metrics.EQ9_EPSILON
    samples: int = 8  # photos on the contact sheet
    progress: bool = True
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # method -> raw options
    # float32 unless asked: bfloat16 autocast (CPUs that have it natively) moves ab by up to a Lab unit, so
    # the same evaluation would score differently from machine to machine
    bf16: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)  # what ran it: recorded in run.json
    # weight file name -> a file of one's own in its place (e.g. cnn -> weights just trained)
    weights: Mapping[str, Path] = field(default_factory=dict)


@dataclass
class EvalResult:
    out: Path
    summaries: list[report.MethodSummary]
    evaluated: int
    skipped_grayscale: list[str] = field(default_factory=list)
    skipped_reference: dict[str, list[str]] = field(default_factory=dict)
    skipped_unreadable: list[str] = field(default_factory=list)  # photos that are not readable images
    files: dict[str, Path] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)  # method -> weights fingerprint


def _batches(items: Sequence[Photo], size: int) -> Iterator[list[Photo]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def run_evaluation(config: EvalConfig, *, log: Callable[[str], None] = print) -> EvalResult:
    """Evaluate ``config.methods`` (plus gray) on the data set; see the module docstring for the outputs."""
    photos = select_photos(config.data, config.split, config.limit)
    if config.split == "all" and Path(config.data).is_dir() and config.methods:
        from worker.colorizers.datasets import split_paths

        trained_on = {ref.name for ref in split_paths(config.data).train}
        seen = sum(photo.ref.name in trained_on for photo in photos)
        if seen:  # a method scored on photos it learnt from looks better than it is
            log(
                f"note: {seen} of the {len(photos)} photos are in this folder's training split (--split "
                "all): a method trained on it may have learnt them; --split val scores the held-out ones only"
            )
    contestants = [GRAY_BASELINE]
    contestants += load_contestants(
        [m for m in dict.fromkeys(config.methods) if m != GRAY_BASELINE.name],
        config.weights_dir,
        config.device,
        config.params,
        bf16=config.bf16,
        overrides=config.weights,
    )
    lacking = [c.name for c in contestants if c.needs_reference and config.references is None]
    if lacking:
        raise EvaluationError(
            f"{', '.join(lacking)} colour{'s' if len(lacking) == 1 else ''} each photo from a reference: "
            "give --references DIR "
            "(a colour photo with the same file name as each photo)"
        )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    changed, fingerprints = check_run_file(
        out,
        data=config.data,
        eps=config.eps,
        weights_dir=config.weights_dir,
        names=[c.name for c in contestants[1:]],
        options={c.name: c.params for c in contestants[1:]},
        overrides=config.weights,
        bf16=config.bf16,
        environment={
            **config.environment,
            "split": config.split,
            "limit": str(config.limit),
            "device": config.device,
            "bf16": str(config.bf16),
        },
    )
    store = RowStore(out)
    if changed:
        log(
            f"weights or options changed since the last run for {', '.join(sorted(changed))}: their rows "
            "are recomputed"
        )
        store.drop(changed)
        for name in changed:
            for sample in (out / "samples" / name).glob("*.png"):
                sample.unlink()
    from worker.colorizers.datasets import ImageReader  # torch: imported when an evaluation runs

    reader = ImageReader()
    has_labels = any(p.label is not None for p in photos)
    classify = scoring.classifier(config.device, config.batch_size) if has_labels else None
    result = EvalResult(out=out, summaries=[], evaluated=0, weights=fingerprints)
    # contact-sheet photos: spread over the data set (a grayscale one is dropped when it is read)
    sample_keys = [p.key for p in spread(photos, config.samples)]
    names = [c.name for c in contestants]

    from tqdm import tqdm

    bar = tqdm(total=len(photos), desc="evaluate", unit="photo", disable=not config.progress)
    for batch in _batches(photos, max(1, config.batch_size)):
        truths: dict[str, np.ndarray] = {}
        for photo in batch:
            try:
                rgb = photo_rgb(reader, photo)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:  # not an image, truncated, ...
                result.skipped_unreadable.append(photo.key)
                log(f"skipped {photo.key}: not a readable image ({exc})")
                if photo.key in sample_keys:
                    sample_keys.remove(photo.key)
                continue
            if is_grayscale(labmod.rgb_to_lab(rgb)[..., 1:]):
                result.skipped_grayscale.append(photo.key)
                if photo.key in sample_keys:
                    sample_keys.remove(photo.key)
                continue
            truths[photo.key] = rgb
        todo = [p for p in batch if p.key in truths]
        if todo:
            _evaluate_batch(todo, truths, contestants, config, store, sample_keys, classify, result)
        result.evaluated += len(todo)
        bar.update(len(batch))
    bar.close()

    skipped = set(result.skipped_grayscale)
    keys = {p.key for p in photos if p.key not in skipped}
    rows = [r for r in store.rows if r["image"] in keys]
    result.summaries = report.summarise_all(rows, [*names, REAL])
    result.files = _write_outputs(out, config, store, keys, names, sample_keys, photos, result, reader)
    return result


def _evaluate_batch(
    todo: list[Photo],
    truths: dict[str, np.ndarray],
    contestants: list[Contestant],
    config: EvalConfig,
    store: RowStore,
    sample_keys: list[str],
    classify: scoring.Classify | None,
    result: EvalResult,
) -> None:
    lightness = {p.key: labmod.rgb_to_lightness(truths[p.key]) for p in todo}
    true_ab = {p.key: labmod.rgb_to_lab(truths[p.key])[..., 1:] for p in todo}
    # the real photos: colourfulness and the classifier on them
    real = [p for p in todo if (p.key, REAL) not in store.done]
    if real:
        preds = classify([truths[p.key] for p in real]) if classify else None
        rows, curves = [], []
        for i, p in enumerate(real):
            row: dict[str, Any] = {"image": p.key, "method": REAL, "label": p.label}
            row.update(scoring.real_values(truths[p.key]))
            scoring.add_top1(row, preds, i, p.label)
            rows.append(row)
            curves.append((p.key, REAL, scoring.perfect_curve()))
        store.add(rows, curves)
    for contestant in contestants:
        need = [
            p
            for p in todo
            if (p.key, contestant.name) not in store.done
            or (p.key in sample_keys and not sample_path(config.out, contestant.name, p.key).is_file())
        ]
        refs: list[np.ndarray | None] = []
        if contestant.needs_reference:
            kept = []
            for p in need:
                ref_path = find_reference(config.references, p.key)
                if ref_path is None:
                    result.skipped_reference.setdefault(contestant.name, []).append(p.key)
                    continue
                try:
                    with Image.open(ref_path) as im:
                        refs.append(np.asarray(im.convert("RGB")))
                except (OSError, ValueError, Image.DecompressionBombError):
                    result.skipped_reference.setdefault(contestant.name, []).append(p.key)
                    continue
                kept.append(p)
            need = kept
        else:
            refs = [None] * len(need)
        if not need:
            continue
        start = time.perf_counter()
        outputs = contestant.colorize([lightness[p.key] for p in need], refs, config.batch_size)
        seconds = (time.perf_counter() - start) / len(need)
        preds = classify(outputs) if classify else None
        rows, curves = [], []
        for i, (p, rgb) in enumerate(zip(need, outputs, strict=True)):
            if p.key in sample_keys:
                path = sample_path(config.out, contestant.name, p.key)
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rgb).save(path)
            if (p.key, contestant.name) in store.done:
                continue
            values, curve = scoring.score(rgb, truths[p.key], true_ab[p.key], config.eps)
            row = {"image": p.key, "method": contestant.name, "label": p.label, "seconds": seconds, **values}
            scoring.add_top1(row, preds, i, p.label)
            rows.append(row)
            curves.append((p.key, contestant.name, curve))
        if rows:
            store.add(rows, curves)


def _write_outputs(
    out: Path,
    config: EvalConfig,
    store: RowStore,
    keys: set[str],
    names: list[str],
    sample_keys: list[str],
    photos: list[Photo],
    result: EvalResult,
    reader: ImageReader,
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    files["per_image"] = store.rows_path
    files["per_image_curves"] = store.curves_path
    files["summary_csv"] = out / "summary.csv"
    report.write_summary_csv(result.summaries, files["summary_csv"])
    notes = [
        f"data: {config.data} (split {config.split}); {result.evaluated} photos evaluated, "
        f"{len(result.skipped_grayscale)} skipped as grayscale ground truth",
        "means over photos (each photo weighs the same); ab metrics on the delivered RGB image converted "
        "back to Lab; AuC = mean of the raw accuracy curve over t = 0…150 (Zhang et al. 2016)",
        "ΔCF = CF(colorized) − CF(real), Hasler & Süsstrunk 2003; SSIM per RGB channel, averaged",
    ]
    if result.skipped_unreadable:
        unreadable = ", ".join(result.skipped_unreadable)
        notes.insert(
            1, f"{len(result.skipped_unreadable)} files skipped as not readable images: {unreadable}"
        )
    for method, skipped in result.skipped_reference.items():
        notes.append(f"{method}: {len(skipped)} photos without a readable reference image were skipped")
    files["summary_md"] = out / "summary.md"
    report.write_summary_md(
        result.summaries, files["summary_md"], title="Evaluation summary", notes=notes, eps=config.eps
    )
    curves = {}
    labels = {}
    for s in result.summaries:
        if s.method == REAL:
            continue
        curve = store.mean_curve(s.method, keys)
        if curve is not None:
            curves[s.method] = curve
            labels[s.method] = f"{s.method} (AuC {s.auc:.3f})"
    if curves:
        what = Path(config.data).name + (
            " (validation split)" if config.split == "val" and Path(config.data).is_dir() else ""
        )
        title = f"Raw accuracy vs threshold: {what}, {result.evaluated} photos"
        svg, png = figures.write_curves(curves, out / "curves", labels=labels, title=title)
        files["curves_svg"], files["curves_png"] = svg, png
    # contact sheet: gray | each method | truth
    by_key = {p.key: p for p in photos}
    columns = [*names, "truth"]
    rows = []
    for key in sample_keys:
        truth = photo_rgb(reader, by_key[key])
        gray = compose(labmod.rgb_to_lightness(truth), np.zeros((1, 1, 2), np.float32))
        row: list[np.ndarray | None] = [gray]
        for name in names[1:]:
            path = sample_path(out, name, key)
            row.append(np.asarray(Image.open(path).convert("RGB")) if path.is_file() else None)
        row.append(truth)
        rows.append(row)
    if rows:
        files["contact_sheet"] = out / "contact_sheet.png"
        figures.contact_sheet(rows, columns, files["contact_sheet"], row_labels=sample_keys)
    return files
