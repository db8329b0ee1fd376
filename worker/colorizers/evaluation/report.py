"""Evaluation summaries: per-image rows -> one row per method, written as CSV and a markdown table.

Every image weighs the same: each summary value is the mean of the per-image values, except
- PSNR: mean over the images where it is finite (an identical image gives +inf; their count is reported);
- top-1: over the images with a known ImageNet class only (empty when there are none).
The ``real`` row holds the ground truth's own colourfulness and the classifier's top-1 on the real photos.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REAL = "real"
GRAY = "gray"

# per-image CSV columns (values of the "real" row: colourfulness and top-1 only)
ROW_FIELDS = (
    "image",
    "method",
    "label",
    "pred_class",
    "top1",
    "eq9_acc",
    "auc",
    "psnr",
    "ssim",
    "colourfulness",
    "cf_truth",
    "dcf",
    "abs_dcf",
    "seconds",
)


@dataclass(frozen=True)
class MethodSummary:
    method: str
    images: int
    eq9_acc: float
    auc: float
    psnr: float
    psnr_infinite: int
    ssim: float
    colourfulness: float
    dcf: float
    abs_dcf: float
    top1: float
    top1_images: int
    seconds_per_image: float


def _floats(rows: Sequence[Mapping[str, str]], key: str) -> np.ndarray:
    vals = [float(r[key]) for r in rows if r.get(key, "") not in ("", None)]
    return np.asarray(vals, dtype=np.float64)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def summarise(method: str, rows: Sequence[Mapping[str, str]]) -> MethodSummary:
    """Aggregate one method's per-image rows (as read back from the CSV: strings)."""
    psnr = _floats(rows, "psnr")
    finite = psnr[np.isfinite(psnr)]
    top1 = _floats(rows, "top1")
    return MethodSummary(
        method=method,
        images=len(rows),
        eq9_acc=_mean(_floats(rows, "eq9_acc")),
        auc=_mean(_floats(rows, "auc")),
        psnr=_mean(finite),
        psnr_infinite=int(psnr.size - finite.size),
        ssim=_mean(_floats(rows, "ssim")),
        colourfulness=_mean(_floats(rows, "colourfulness")),
        dcf=_mean(_floats(rows, "dcf")),
        abs_dcf=_mean(_floats(rows, "abs_dcf")),
        top1=_mean(top1),
        top1_images=int(top1.size),
        seconds_per_image=_mean(_floats(rows, "seconds")),
    )


def summarise_all(rows: Iterable[Mapping[str, str]], methods: Sequence[str]) -> list[MethodSummary]:
    """One summary per name in ``methods`` (in that order), from all rows of the per-image CSV."""
    by_method: dict[str, list[Mapping[str, str]]] = {m: [] for m in methods}
    for row in rows:
        if row["method"] in by_method:
            by_method[row["method"]].append(row)
    return [summarise(m, by_method[m]) for m in methods]


def write_summary_csv(summaries: Sequence[MethodSummary], path: Path) -> None:
    fields = list(asdict(summaries[0]).keys()) if summaries else ["method"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for s in summaries:
            values = asdict(s).items()
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in values})


def _cell(value: float, fmt: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "–"
    return format(value, fmt)


def markdown_table(summaries: Sequence[MethodSummary], *, eps: float = 0.02) -> str:
    """The summary as a GitHub markdown table (gray and real rows included, '–' where not applicable)."""
    show_top1 = any(s.top1_images for s in summaries)
    head = [
        "method",
        "images",
        f"eq. 9 acc (ε={eps:g}) ↑",
        "AuC 0–150 ↑",
        "PSNR dB ↑",
        "SSIM ↑",
        "colourfulness",
        "ΔCF",
        "abs ΔCF ↓",
    ]
    if show_top1:
        head.append("top-1 ↑")
    head.append("s/image")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for s in summaries:
        psnr = _cell(s.psnr, ".2f") + (f" ({s.psnr_infinite}×∞)" if s.psnr_infinite else "")
        cells = [
            f"**{s.method}**" if s.method not in (GRAY, REAL) else s.method,
            str(s.images),
            _cell(s.eq9_acc, ".4f"),
            _cell(s.auc, ".4f"),
            psnr,
            _cell(s.ssim, ".4f"),
            _cell(s.colourfulness, ".2f"),
            _cell(s.dcf, "+.2f"),
            _cell(s.abs_dcf, ".2f"),
        ]
        if show_top1:
            cells.append(_cell(s.top1, ".3f") + (f" (n={s.top1_images})" if s.top1_images else ""))
        cells.append(_cell(s.seconds_per_image, ".3f"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary_md(
    summaries: Sequence[MethodSummary],
    path: Path,
    *,
    title: str,
    notes: Sequence[str] = (),
    eps: float = 0.02,
) -> None:
    text = f"# {title}\n\n" + markdown_table(summaries, eps=eps)
    if notes:
        text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    Path(path).write_text(text, encoding="utf-8")
