"""The evaluation runner behind ``colorlab evaluate`` (pure python/torch: no web, database or queue).

For each photo of a data set, each method colorizes its lightness through the same code the worker uses
(``registry.get_colorizer`` + ``pipeline.compose``; feed-forward methods batched via ``predict_ab_batch``),
and the delivered RGB image is scored against the real photo with :mod:`worker.colorizers.metrics`. The
ab-based metrics use the delivered image converted back to Lab, so gamut mapping and 8-bit rounding count.
The trivial prediction ``gray`` (ab = 0: the photo's own lightness, no colour) is always evaluated as a
baseline, and a ``real`` row records the real photo's colourfulness and classifier top-1.

Data: a folder of images (``split="val"``: the validation photos of :func:`datasets.split_paths`, i.e.
the classes held out from training for imagenet-samples), or a zip file (its ``test/`` entries).
Photos whose ground truth is grayscale (99 % of pixels with chroma below 2 Lab units) are skipped, as
Zhang et al. 2016 removed grayscale images from their test set. ``limit`` keeps N photos spread evenly
over the sorted list (every len/N-th one), so a limit on a class-ordered set still covers every class.

Outputs in ``out``: ``per_image.csv`` and ``per_image_curves.csv`` (resumable: image/method pairs present in
both are not recomputed), ``summary.csv``, ``summary.md``, ``curves.svg``/``curves.png`` (mean raw accuracy
curve per method), ``contact_sheet.png`` (gray | each method | truth, for ``samples`` photos spread over the
data set) and ``run.json`` (data, ε, each method's weights fingerprint: rows of changed weights are redone).
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from worker.colorizers import charts, evalreport, metrics
from worker.colorizers import lab as labmod
from worker.colorizers.evalreport import GRAY, REAL, ROW_FIELDS
from worker.colorizers.pipeline import compose

CURVE_FIELDS = ("image", "method", *(f"t{t}" for t in range(metrics.AUC_MAX_THRESHOLD + 1)))
GRAYSCALE_CHROMA = 2.0  # Lab units
GRAYSCALE_SHARE = 99.0  # percentile
_LABEL_RE = re.compile(r"^(\d{1,4})_n\d{8}_")


class EvaluationError(RuntimeError):
    """The evaluation cannot run as asked (unavailable method, bad data folder, mismatched output folder)."""


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


@dataclass(frozen=True)
class Photo:
    key: str  # stable id in the CSV: path relative to the data folder, or the zip member name
    ref: Any  # datasets.ImageRef
    label: int | None  # ImageNet class index from "<idx>_<wnid>_<label>.jpg", else None


@dataclass
class EvalResult:
    out: Path
    summaries: list[evalreport.MethodSummary]
    evaluated: int
    skipped_grayscale: list[str] = field(default_factory=list)
    skipped_reference: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)  # method -> weights fingerprint


# ----------------------------------------------------------------------------------------- data
def imagenet_label(name: str) -> int | None:
    """Class index from an imagenet-samples file name ``<idx>_<wnid>_<label>.jpg``; None otherwise."""
    match = _LABEL_RE.match(Path(name).name)
    return int(match.group(1)) if match else None


def spread(items: Sequence[Any], limit: int | None) -> list[Any]:
    """``limit`` items spread evenly over ``items`` (all of them when limit is None or ≥ len)."""
    n = len(items)
    if limit is None or limit >= n:
        return list(items)
    if limit <= 0:
        return []
    return [items[(i * n) // limit] for i in range(limit)]


def select_photos(data: Path, split: str = "all", limit: int | None = None) -> list[Photo]:
    """The photos to evaluate (see the module docstring), sorted by key, then spread to ``limit``."""
    from worker.colorizers import datasets

    data = Path(data)
    if split not in ("val", "all"):
        raise EvaluationError(f"split must be 'val' or 'all', got {split!r}")
    try:
        if data.is_file():
            refs = [r for r in datasets.list_images(data) if Path(r.name).parts[0].lower() == "test"]
        elif split == "val":
            refs = datasets.split_paths(data).val
        else:
            refs = datasets.list_images(data)
    except FileNotFoundError as exc:
        raise EvaluationError(str(exc)) from exc
    photos = []
    for ref in refs:
        key = ref.name if ref.archive is not None else Path(ref.name).relative_to(data).as_posix()
        photos.append(Photo(key=key, ref=ref, label=imagenet_label(key)))
    photos.sort(key=lambda p: p.key)
    if not photos:
        raise EvaluationError(f"no images to evaluate in {data} (split {split!r})")
    return spread(photos, limit)


def is_grayscale(true_ab: np.ndarray) -> bool:
    """True when 99 % of the pixels have chroma sqrt(a² + b²) below 2 Lab units."""
    chroma = np.hypot(true_ab[..., 0], true_ab[..., 1])
    return bool(np.percentile(chroma, GRAYSCALE_SHARE) < GRAYSCALE_CHROMA)


def find_reference(references: Path | None, key: str) -> Path | None:
    """The reference photo for ``key``: same file name, else same stem with any image suffix."""
    if references is None:
        return None
    name = Path(key).name
    exact = references / name
    if exact.is_file():
        return exact
    stem = Path(key).stem
    for candidate in sorted(references.glob(f"{stem}.*")):
        if candidate.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}:
            return candidate
    return None


# ----------------------------------------------------------------------------------- methods
@dataclass
class Method:
    name: str
    batchable: bool
    needs_reference: bool
    params: dict[str, Any]
    colorizer: Any  # base.Colorizer (None for gray)


def load_methods(
    names: Sequence[str],
    weights_dir: Path,
    device: str,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Method]:
    """Load every requested method, or raise EvaluationError listing each one that cannot run and why.

    ``params``: raw options per method name (validated against the catalogue, e.g. exemplar iterations).
    """
    from worker.colorizers.catalogue import CATALOGUE, ParamError, validate_params
    from worker.colorizers.registry import Unavailable, get_colorizer

    problems: list[str] = []
    loaded: list[Method] = []
    for name in sorted(set(params or {}) - set(names)):
        problems.append(f"{name}: options given for a method that is not evaluated")
    for name in names:
        info = CATALOGUE.get(name)
        if info is None:
            known = ", ".join(sorted(m.name for m in CATALOGUE)) or "none"
            problems.append(f"{name}: unknown method (known: {known}; 'gray' is always included)")
            continue
        try:
            options = validate_params(info, (params or {}).get(name, {}))
        except ParamError as exc:
            problems.append(f"{name}: {exc}")
            continue
        try:
            colorizer = get_colorizer(name, weights_dir, device)
        except Unavailable as exc:
            problems.append(f"{name}: {exc}")
            continue
        loaded.append(Method(name, info.batchable, info.needs_reference, options, colorizer))
    if problems:
        raise EvaluationError("cannot evaluate:\n  " + "\n  ".join(problems))
    return loaded


def _predict(
    method: Method, lightness: list[np.ndarray], references: list[np.ndarray | None], batch_size: int
) -> list[np.ndarray]:
    if method.colorizer is None:  # gray
        return [np.zeros((*L.shape, 2), dtype=np.float32) for L in lightness]
    if method.batchable and not method.needs_reference:
        out: list[np.ndarray] = []
        for start in range(0, len(lightness), batch_size):
            out.extend(
                method.colorizer.predict_ab_batch(lightness[start : start + batch_size], params=method.params)
            )
        return out
    return [
        method.colorizer.predict_ab(L, reference=ref, params=method.params, progress=None)
        for L, ref in zip(lightness, references, strict=True)
    ]


# ------------------------------------------------------------------------------------ scoring
def score(
    pred_rgb: np.ndarray, true_rgb: np.ndarray, true_ab: np.ndarray, eps: float
) -> tuple[dict[str, float], np.ndarray]:
    """Metrics of one delivered image against the truth, and its raw accuracy curve."""
    return metrics.compare_rgb(pred_rgb, true_rgb, eps=eps, true_ab=true_ab)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        return "inf" if np.isinf(v) else f"{float(v):.6g}"
    return str(v)


# ----------------------------------------------------------------------------------- outputs
class RowStore:
    """The two per-image CSV files, appended batch by batch; a pair is done when it is in both."""

    def __init__(self, out: Path) -> None:
        self.rows_path = out / "per_image.csv"
        self.curves_path = out / "per_image_curves.csv"
        self.rows = self._read(self.rows_path)
        curves = self._read(self.curves_path)
        self.curves = {(r["image"], r["method"]): r for r in curves}
        self.done = {(r["image"], r["method"]) for r in self.rows} & set(self.curves)
        # drop half-written pairs (in one file only) so they are recomputed cleanly
        self.rows = [r for r in self.rows if (r["image"], r["method"]) in self.done]
        self.curves = {k: v for k, v in self.curves.items() if k in self.done}
        self._rewrite()

    def drop(self, methods: set[str]) -> None:
        """Forget every row of ``methods`` (e.g. their weights changed) and rewrite the files."""
        self.rows = [r for r in self.rows if r["method"] not in methods]
        self.curves = {k: v for k, v in self.curves.items() if k[1] not in methods}
        self.done = {k for k in self.done if k[1] not in methods}
        self._rewrite()

    @staticmethod
    def _read(path: Path) -> list[dict[str, str]]:
        if not path.is_file():
            return []
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def _rewrite(self) -> None:
        for path, fields, rows in (
            (self.rows_path, ROW_FIELDS, self.rows),
            (self.curves_path, CURVE_FIELDS, list(self.curves.values())),
        ):
            with open(path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)

    def add(self, rows: list[dict[str, Any]], curves: list[tuple[str, str, np.ndarray]]) -> None:
        text_rows = [{k: _fmt(r.get(k)) for k in ROW_FIELDS} for r in rows]
        text_curves = []
        for image, method, curve in curves:
            entry = {"image": image, "method": method}
            entry.update({f"t{t}": f"{v:.5f}" for t, v in enumerate(curve)})
            text_curves.append(entry)
        with open(self.curves_path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=CURVE_FIELDS).writerows(text_curves)
        with open(self.rows_path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=ROW_FIELDS).writerows(text_rows)
        self.rows.extend(text_rows)
        for c in text_curves:
            self.curves[(c["image"], c["method"])] = c
            self.done.add((c["image"], c["method"]))

    def mean_curve(self, method: str, keys: set[str]) -> np.ndarray | None:
        rows = [v for (img, m), v in self.curves.items() if m == method and img in keys]
        if not rows:
            return None
        arr = np.array([[float(r[f"t{t}"]) for t in range(metrics.AUC_MAX_THRESHOLD + 1)] for r in rows])
        return arr.mean(axis=0)


def weights_fingerprint(method: str, weights_dir: Path) -> str:
    """sha256 of the method's weight files (joined), so results of other weights are never mixed in."""
    from worker.colorizers.catalogue import CATALOGUE
    from worker.colorizers.manifest import MANIFEST, sha256_file

    info = CATALOGUE.get(method)
    if info is None:
        return ""
    paths = [MANIFEST[w].path(weights_dir) for w in info.weights if w in MANIFEST]
    return "+".join(f"{p.name}:{sha256_file(p)[:16]}" for p in paths if p.is_file())  # some need only one


def _check_run_file(out: Path, config: EvalConfig, methods: Sequence[str]) -> tuple[set[str], dict[str, str]]:
    """Refuse to mix data sets or ε in one output folder.

    Returns the methods whose weights changed since the last run, and every method's weights fingerprint.
    """
    path = out / "run.json"
    identity = {"data": str(Path(config.data).resolve()), "eps": config.eps}
    previous: dict[str, Any] = {}
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        old = {k: previous.get(k) for k in identity}
        if old != identity:
            raise EvaluationError(f"{out} holds results of another evaluation ({old}); choose another --out")
    weights = dict(previous.get("weights", {}))
    changed = set()
    current = {}
    for method in methods:
        current[method] = fingerprint = weights_fingerprint(method, config.weights_dir)
        if method in weights and weights[method] != fingerprint:
            changed.add(method)
        weights[method] = fingerprint
    record = identity | {"weights": weights, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return changed, current


def _sample_path(out: Path, method: str, key: str) -> Path:
    return out / "samples" / method / (re.sub(r"[^A-Za-z0-9._-]+", "__", key) + ".png")


def _read_rgb(reader: Any, photo: Photo) -> np.ndarray:
    return np.ascontiguousarray(reader.read(photo.ref), dtype=np.uint8)


def _batches(items: Sequence[Photo], size: int) -> Iterator[list[Photo]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# -------------------------------------------------------------------------------------- runner
def run(config: EvalConfig, *, log: Callable[[str], None] = print) -> EvalResult:
    """Evaluate ``config.methods`` (plus gray) on the data set; see the module docstring for the outputs."""
    from worker.colorizers import datasets

    photos = select_photos(config.data, config.split, config.limit)
    methods = [Method(GRAY, True, False, {}, None)]
    methods += load_methods(
        [m for m in dict.fromkeys(config.methods) if m != GRAY],
        config.weights_dir,
        config.device,
        config.params,
    )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    changed, fingerprints = _check_run_file(out, config, [m.name for m in methods[1:]])
    store = RowStore(out)
    if changed:
        log(f"weights changed since the last run for {', '.join(sorted(changed))}: their rows are recomputed")
        store.drop(changed)
        for name in changed:
            for sample in (out / "samples" / name).glob("*.png"):
                sample.unlink()
    reader = datasets.ImageReader()
    has_labels = any(p.label is not None for p in photos)
    classify: Callable[[list[np.ndarray]], np.ndarray] | None = None
    if has_labels:
        from worker.colorizers import classifier

        def classify(images: list[np.ndarray]) -> np.ndarray:
            return classifier.predict(images, device=config.device, batch_size=config.batch_size)

    result = EvalResult(out=out, summaries=[], evaluated=0, weights=fingerprints)
    # contact-sheet photos: spread over the data set (a grayscale one is dropped when it is read)
    sample_keys = [p.key for p in spread(photos, config.samples)]
    names = [m.name for m in methods]

    from tqdm import tqdm

    bar = tqdm(total=len(photos), desc="evaluate", unit="photo", disable=not config.progress)
    for batch in _batches(photos, max(1, config.batch_size)):
        truths: dict[str, np.ndarray] = {}
        for photo in batch:
            rgb = _read_rgb(reader, photo)
            if is_grayscale(labmod.rgb_to_lab(rgb)[..., 1:]):
                result.skipped_grayscale.append(photo.key)
                if photo.key in sample_keys:
                    sample_keys.remove(photo.key)
                continue
            truths[photo.key] = rgb
        todo = [p for p in batch if p.key in truths]
        if todo:
            _evaluate_batch(todo, truths, methods, config, store, sample_keys, classify, result)
        result.evaluated += len(todo)
        bar.update(len(batch))
    bar.close()

    skipped = set(result.skipped_grayscale)
    keys = {p.key for p in photos if p.key not in skipped}
    rows = [r for r in store.rows if r["image"] in keys]
    result.summaries = evalreport.summarise_all(rows, [*names, REAL])
    result.files = _write_outputs(out, config, store, keys, names, sample_keys, photos, result, reader)
    return result


def _evaluate_batch(
    todo: list[Photo],
    truths: dict[str, np.ndarray],
    methods: list[Method],
    config: EvalConfig,
    store: RowStore,
    sample_keys: list[str],
    classify: Callable[[list[np.ndarray]], np.ndarray] | None,
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
            cf = metrics.colourfulness(truths[p.key])
            row: dict[str, Any] = {
                "image": p.key,
                "method": REAL,
                "label": p.label,
                "colourfulness": cf,
                "cf_truth": cf,
            }
            _add_top1(row, preds, i, p.label)
            rows.append(row)
            curves.append((p.key, REAL, np.ones(metrics.AUC_MAX_THRESHOLD + 1)))
        store.add(rows, curves)
    for method in methods:
        need = [
            p
            for p in todo
            if (p.key, method.name) not in store.done
            or (p.key in sample_keys and not _sample_path(config.out, method.name, p.key).is_file())
        ]
        refs: list[np.ndarray | None] = []
        if method.needs_reference:
            kept = []
            for p in need:
                ref_path = find_reference(config.references, p.key)
                if ref_path is None:
                    result.skipped_reference.setdefault(method.name, []).append(p.key)
                    continue
                with Image.open(ref_path) as im:
                    refs.append(np.asarray(im.convert("RGB")))
                kept.append(p)
            need = kept
        else:
            refs = [None] * len(need)
        if not need:
            continue
        start = time.perf_counter()
        abs_ = _predict(method, [lightness[p.key] for p in need], refs, config.batch_size)
        outputs = [compose(lightness[p.key], ab) for p, ab in zip(need, abs_, strict=True)]
        seconds = (time.perf_counter() - start) / len(need)
        preds = classify(outputs) if classify else None
        rows, curves = [], []
        for i, (p, rgb) in enumerate(zip(need, outputs, strict=True)):
            if p.key in sample_keys:
                path = _sample_path(config.out, method.name, p.key)
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rgb).save(path)
            if (p.key, method.name) in store.done:
                continue
            values, curve = score(rgb, truths[p.key], true_ab[p.key], config.eps)
            row = {"image": p.key, "method": method.name, "label": p.label, "seconds": seconds, **values}
            _add_top1(row, preds, i, p.label)
            rows.append(row)
            curves.append((p.key, method.name, curve))
        if rows:
            store.add(rows, curves)


def _add_top1(row: dict[str, Any], preds: np.ndarray | None, i: int, label: int | None) -> None:
    if preds is not None and label is not None:
        row["pred_class"] = int(preds[i])
        row["top1"] = int(int(preds[i]) == label)


def _write_outputs(
    out: Path,
    config: EvalConfig,
    store: RowStore,
    keys: set[str],
    names: list[str],
    sample_keys: list[str],
    photos: list[Photo],
    result: EvalResult,
    reader: Any,
) -> dict[str, Path]:
    files: dict[str, Path] = {}
    files["per_image"] = store.rows_path
    files["per_image_curves"] = store.curves_path
    files["summary_csv"] = out / "summary.csv"
    evalreport.write_summary_csv(result.summaries, files["summary_csv"])
    notes = [
        f"data: {config.data} (split {config.split}); {result.evaluated} photos evaluated, "
        f"{len(result.skipped_grayscale)} skipped as grayscale ground truth",
        "means over photos (each photo weighs the same); ab metrics on the delivered RGB image converted "
        "back to Lab; AuC = mean of the raw accuracy curve over t = 0…150 (Zhang et al. 2016)",
        "ΔCF = CF(colorized) − CF(real), Hasler & Süsstrunk 2003; SSIM per RGB channel, averaged",
    ]
    for method, skipped in result.skipped_reference.items():
        notes.append(f"{method}: {len(skipped)} photos without a reference image were skipped")
    files["summary_md"] = out / "summary.md"
    evalreport.write_summary_md(
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
        svg, png = charts.write_curves(curves, out / "curves", labels=labels, title=title)
        files["curves_svg"], files["curves_png"] = svg, png
    # contact sheet: gray | each method | truth
    by_key = {p.key: p for p in photos}
    columns = [*names, "truth"]
    rows = []
    for key in sample_keys:
        truth = _read_rgb(reader, by_key[key])
        gray = compose(labmod.rgb_to_lightness(truth), np.zeros((1, 1, 2), np.float32))
        row: list[np.ndarray | None] = [gray]
        for name in names[1:]:
            path = _sample_path(out, name, key)
            row.append(np.asarray(Image.open(path).convert("RGB")) if path.is_file() else None)
        row.append(truth)
        rows.append(row)
    if rows:
        files["contact_sheet"] = out / "contact_sheet.png"
        charts.contact_sheet(rows, columns, files["contact_sheet"], row_labels=sample_keys)
    return files
