"""What an evaluation keeps on disk between runs, so a re-run resumes.

- ``per_image.csv`` and ``per_image_curves.csv``: appended batch by batch; an image/method pair present in
  both is not recomputed (:class:`RowStore`).
- ``run.json``: the data set, ε and each method's weights fingerprint and options; another data set or ε in
  the same folder is refused, and the rows of a method whose weights or options changed are redone
  (:func:`check_run_file`).
- ``samples/<method>/<photo>.png``: the contact sheet's images (:func:`sample_path`).
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from worker.colorizers import methods, metrics
from worker.colorizers.evaluation import EvaluationError
from worker.colorizers.evaluation.report import ROW_FIELDS
from worker.colorizers.manifest import sha256_file

CURVE_FIELDS = ("image", "method", *(f"t{t}" for t in range(metrics.AUC_MAX_THRESHOLD + 1)))


def format_value(v: Any) -> str:
    """A CSV cell: empty for None, ``inf`` for infinity, 6 significant digits for floats."""
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        return "inf" if np.isinf(v) else f"{float(v):.6g}"
    return str(v)


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

    def drop(self, names: set[str]) -> None:
        """Forget every row of the methods ``names`` (e.g. their weights changed) and rewrite the files."""
        self.rows = [r for r in self.rows if r["method"] not in names]
        self.curves = {k: v for k, v in self.curves.items() if k[1] not in names}
        self.done = {k for k in self.done if k[1] not in names}
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
        text_rows = [{k: format_value(r.get(k)) for k in ROW_FIELDS} for r in rows]
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
        mean: np.ndarray = arr.mean(axis=0)
        return mean


def weights_fingerprint(method: str, weights_dir: Path, overrides: Mapping[str, Path] | None = None) -> str:
    """sha256 of the method's weight files (joined), so results of other weights are never mixed in;
    ``overrides``: files given in place of some (see ``LoadContext``)."""
    info = methods.get(method)
    if info is None:
        return ""
    given = overrides or {}
    files = list(info.weights)
    for base in info.builds_on:  # exemplar's start: unet-bins-reference's weights decide its colours too
        files += [w for w in (methods.get(base) or info).weights if w not in files]
    paths = [given.get(w.name) or w.path(weights_dir) for w in files]
    return "+".join(f"{p.name}:{sha256_file(p)[:16]}" for p in paths if p.is_file())  # some need only one


def check_run_file(
    out: Path,
    *,
    data: Path,
    eps: float,
    weights_dir: Path,
    names: Sequence[str],
    options: Mapping[str, Mapping[str, Any]],
    environment: Mapping[str, str] | None = None,
    overrides: Mapping[str, Path] | None = None,
    bf16: bool = False,
) -> tuple[set[str], dict[str, str]]:
    """Refuse to mix data sets or ε in one output folder, and record this run in ``run.json``.

    Returns the methods whose weights or ``options`` (validated, per method) changed since the last run,
    and every method's weights fingerprint. ``environment`` (split, device, versions, commit) is recorded
    as the last run's.
    """
    path = out / "run.json"
    identity = {"data": str(Path(data).resolve()), "eps": eps}
    previous: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:  # not JSON, or not UTF-8: a clean refusal, not a traceback
            loaded = None
        if not isinstance(loaded, dict):
            raise EvaluationError(f"{path} is not the run file of an evaluation; choose another --out")
        previous = loaded
        old = {k: previous.get(k) for k in identity}
        if old != identity:
            raise EvaluationError(f"{out} holds results of another evaluation ({old}); choose another --out")
    weights = dict(previous.get("weights", {}))
    # Rows made with other options (exemplar.iterations=10, then 200) must not be reported as these.
    used = dict(previous.get("options", {}))
    changed = set()
    current = {}
    for method in names:
        current[method] = fingerprint = weights_fingerprint(method, weights_dir, overrides)
        # bfloat16 moves ab by up to a Lab unit: rows made with it are not these
        run_options = {**options.get(method, {}), **({"bf16": True} if bf16 else {})}
        given = json.dumps(run_options, sort_keys=True, default=str)
        if used.get(method, given) != given or weights.get(method, fingerprint) != fingerprint:
            changed.add(method)
        weights[method], used[method] = fingerprint, given
    record = identity | {
        "weights": weights,
        "options": used,
        "last_run": dict(environment or {}),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return changed, current


def sample_path(out: Path, method: str, key: str) -> Path:
    """Where the contact sheet's image of photo ``key`` by ``method`` is kept."""
    return out / "samples" / method / (re.sub(r"[^A-Za-z0-9._-]+", "__", key) + ".png")
