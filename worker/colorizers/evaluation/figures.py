"""Figures for the evaluation, with no plotting library: accuracy curves (SVG and PNG) and a contact sheet.

The SVG is written by hand; the PNG is drawn with Pillow's ImageDraw at twice its size and downsampled
(smooth, anti-aliased lines). Both share one layout: axes, grid, ticks, axis labels, title and a legend.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
BASELINE_COLOR = "#7f7f7f"
BASELINE_NAME = "gray"


@dataclass(frozen=True)
class Series:
    name: str  # legend label
    x: np.ndarray
    y: np.ndarray
    color: str
    dashed: bool = False


@dataclass(frozen=True)
class Layout:
    width: int = 900
    height: int = 560
    left: int = 80
    right: int = 30
    top: int = 50
    bottom: int = 70
    x_max: float = 150.0
    x_step: float = 25.0
    y_step: float = 0.2

    @property
    def plot_w(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> int:
        return self.height - self.top - self.bottom

    def px(self, x: float) -> float:
        return self.left + self.plot_w * x / self.x_max

    def py(self, y: float) -> float:
        return self.top + self.plot_h * (1.0 - y)


def curve_series(curves: Mapping[str, np.ndarray], labels: Mapping[str, str] | None = None) -> list[Series]:
    """One series per method (threshold t = index); the gray baseline is dashed and gray."""
    out: list[Series] = []
    colors = iter(PALETTE * 4)
    for name, curve in curves.items():
        y = np.asarray(curve, dtype=np.float64)
        baseline = name == BASELINE_NAME
        out.append(
            Series(
                name=(labels or {}).get(name, name),
                x=np.arange(len(y), dtype=np.float64),
                y=y,
                color=BASELINE_COLOR if baseline else next(colors),
                dashed=baseline,
            )
        )
    return out


def _ticks(step: float, maximum: float) -> list[float]:
    return [i * step for i in range(round(maximum / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:g}" if v != int(v) else f"{int(v)}"


def write_svg(
    series: Sequence[Series], path: Path, *, title: str, x_label: str, y_label: str, layout: Layout = Layout()
) -> None:
    L = layout
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{L.width}" height="{L.height}" '
        f'viewBox="0 0 {L.width} {L.height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        f'<rect width="{L.width}" height="{L.height}" fill="white"/>',
        f'<text x="{L.width / 2}" y="28" font-size="17" text-anchor="middle">{escape(title)}</text>',
    ]
    for x in _ticks(L.x_step, L.x_max):
        X = L.px(x)
        parts.append(
            f'<line x1="{X:.1f}" y1="{L.top}" x2="{X:.1f}" y2="{L.top + L.plot_h}" stroke="#e5e5e5"/>'
        )
        parts.append(
            f'<line x1="{X:.1f}" y1="{L.top + L.plot_h}" x2="{X:.1f}" y2="{L.top + L.plot_h + 6}" '
            'stroke="black"/>'
        )
        parts.append(
            f'<text x="{X:.1f}" y="{L.top + L.plot_h + 22}" font-size="13" '
            f'text-anchor="middle">{_fmt(x)}</text>'
        )
    for y in _ticks(L.y_step, 1.0):
        Y = L.py(y)
        parts.append(
            f'<line x1="{L.left}" y1="{Y:.1f}" x2="{L.left + L.plot_w}" y2="{Y:.1f}" stroke="#e5e5e5"/>'
        )
        parts.append(f'<line x1="{L.left - 6}" y1="{Y:.1f}" x2="{L.left}" y2="{Y:.1f}" stroke="black"/>')
        parts.append(
            f'<text x="{L.left - 10}" y="{Y + 4:.1f}" font-size="13" text-anchor="end">{y:.1f}</text>'
        )
    parts.append(
        f'<rect x="{L.left}" y="{L.top}" width="{L.plot_w}" height="{L.plot_h}" fill="none" stroke="black"/>'
    )
    parts.append(
        f'<text x="{L.left + L.plot_w / 2}" y="{L.height - 18}" font-size="14" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    cy = L.top + L.plot_h / 2
    parts.append(
        f'<text x="22" y="{cy}" font-size="14" text-anchor="middle" '
        f'transform="rotate(-90 22 {cy})">{escape(y_label)}</text>'
    )
    for s in series:
        pts = " ".join(f"{L.px(x):.2f},{L.py(y):.2f}" for x, y in zip(s.x, s.y, strict=True))
        dash = ' stroke-dasharray="7 5"' if s.dashed else ""
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{s.color}" stroke-width="2.2"{dash}/>')
    # legend, lower right inside the plot
    row = 22
    box_w = 20 + 30 + max((len(s.name) for s in series), default=0) * 7.6
    x0 = L.left + L.plot_w - box_w - 12
    y0 = L.top + L.plot_h - row * len(series) - 16
    parts.append(
        f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{box_w:.1f}" height="{row * len(series) + 8}" '
        'fill="white" fill-opacity="0.9" stroke="#999"/>'
    )
    for i, s in enumerate(series):
        yy = y0 + 14 + i * row
        dash = ' stroke-dasharray="7 5"' if s.dashed else ""
        parts.append(
            f'<line x1="{x0 + 8:.1f}" y1="{yy:.1f}" x2="{x0 + 38:.1f}" y2="{yy:.1f}" '
            f'stroke="{s.color}" stroke-width="2.5"{dash}/>'
        )
        parts.append(f'<text x="{x0 + 46:.1f}" y="{yy + 4.5:.1f}" font-size="13">{escape(s.name)}</text>')
    parts.append("</svg>")
    Path(path).write_text("\n".join(parts) + "\n", encoding="utf-8")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _dashed(
    draw: ImageDraw.ImageDraw, pts: list[tuple[float, float]], color: str, width: int, on: float, off: float
) -> None:
    """Polyline with a dash pattern that runs on across vertices."""
    phase, drawing = 0.0, True
    for (x1, y1), (x2, y2) in itertools.pairwise(pts):
        seg = float(np.hypot(x2 - x1, y2 - y1))
        pos = 0.0
        while pos < seg:
            limit = (on if drawing else off) - phase
            step = min(limit, seg - pos)
            if drawing:
                a, b = pos / seg, (pos + step) / seg
                start = (x1 + (x2 - x1) * a, y1 + (y2 - y1) * a)
                end = (x1 + (x2 - x1) * b, y1 + (y2 - y1) * b)
                draw.line([start, end], fill=color, width=width)
            pos += step
            phase += step
            if phase >= (on if drawing else off) - 1e-9:
                phase, drawing = 0.0, not drawing


def write_png(
    series: Sequence[Series],
    path: Path,
    *,
    title: str,
    x_label: str,
    y_label: str,
    layout: Layout = Layout(),
    scale: int = 2,
) -> None:
    L = layout
    S = scale
    img = Image.new("RGB", (L.width * S, L.height * S), "white")
    d = ImageDraw.Draw(img)
    f_title, f_tick, f_label = _font(17 * S), _font(13 * S), _font(14 * S)

    def P(x: float, y: float) -> tuple[float, float]:
        return x * S, y * S

    d.text(P(L.width / 2, 28), title, fill="black", font=f_title, anchor="ms")
    for x in _ticks(L.x_step, L.x_max):
        X = L.px(x)
        d.line([P(X, L.top), P(X, L.top + L.plot_h)], fill="#e5e5e5", width=S)
        d.line([P(X, L.top + L.plot_h), P(X, L.top + L.plot_h + 6)], fill="black", width=S)
        d.text(P(X, L.top + L.plot_h + 22), _fmt(x), fill="black", font=f_tick, anchor="ms")
    for y in _ticks(L.y_step, 1.0):
        Y = L.py(y)
        d.line([P(L.left, Y), P(L.left + L.plot_w, Y)], fill="#e5e5e5", width=S)
        d.line([P(L.left - 6, Y), P(L.left, Y)], fill="black", width=S)
        d.text(P(L.left - 10, Y + 4), f"{y:.1f}", fill="black", font=f_tick, anchor="rs")
    d.rectangle([P(L.left, L.top), P(L.left + L.plot_w, L.top + L.plot_h)], outline="black", width=S)
    d.text(P(L.left + L.plot_w / 2, L.height - 18), x_label, fill="black", font=f_label, anchor="ms")
    # rotated y label
    bbox = d.textbbox((0, 0), y_label, font=f_label)
    tw, th = bbox[2] - bbox[0] + 4, bbox[3] - bbox[1] + 8
    label = Image.new("RGBA", (int(tw), int(th)), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((2, 2 - bbox[1]), y_label, fill="black", font=f_label)
    label = label.rotate(90, expand=True)
    where = (int(14 * S - label.width / 2), int((L.top + L.plot_h / 2) * S - label.height / 2))
    img.paste(label, where, label)
    for s in series:
        pts = [P(L.px(x), L.py(y)) for x, y in zip(s.x, s.y, strict=True)]
        if s.dashed:
            _dashed(d, pts, s.color, int(2.2 * S), 7 * S, 5 * S)
        else:
            d.line(pts, fill=s.color, width=int(2.2 * S), joint="curve")
    row = 22
    widths = [d.textlength(s.name, font=f_tick) / S for s in series]
    box_w = 46 + max(widths, default=0) + 10
    x0 = L.left + L.plot_w - box_w - 12
    y0 = L.top + L.plot_h - row * len(series) - 16
    d.rectangle(
        [P(x0, y0), P(x0 + box_w, y0 + row * len(series) + 8)], fill="white", outline="#999999", width=S
    )
    for i, s in enumerate(series):
        yy = y0 + 14 + i * row
        if s.dashed:
            _dashed(d, [P(x0 + 8, yy), P(x0 + 38, yy)], s.color, int(2.5 * S), 7 * S, 5 * S)
        else:
            d.line([P(x0 + 8, yy), P(x0 + 38, yy)], fill=s.color, width=int(2.5 * S))
        d.text(P(x0 + 46, yy + 4.5), s.name, fill="black", font=f_tick, anchor="ls")
    img.resize((L.width, L.height), Image.Resampling.LANCZOS).save(path)


def write_curves(
    curves: Mapping[str, np.ndarray],
    out_stem: Path,
    *,
    labels: Mapping[str, str] | None = None,
    title: str = "Raw accuracy vs threshold (Zhang et al. 2016)",
    x_label: str = "threshold t on the L2 ab error (Lab units)",
    y_label: str = "share of pixels with error ≤ t",
) -> tuple[Path, Path]:
    """``out_stem``.svg and .png of the given mean accuracy curves (one per method)."""
    series = curve_series(curves, labels)
    svg, png = out_stem.with_suffix(".svg"), out_stem.with_suffix(".png")
    write_svg(series, svg, title=title, x_label=x_label, y_label=y_label)
    write_png(series, png, title=title, x_label=x_label, y_label=y_label)
    return svg, png


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray | None]],
    columns: Sequence[str],
    path: Path,
    *,
    row_labels: Sequence[str] = (),
    cell: int = 128,
    pad: int = 4,
    header: int = 26,
) -> None:
    """A grid of RGB uint8 images: one row per photo, one column per ``columns`` entry (None: blank cell).

    Each image is fitted into a ``cell``×``cell`` square (aspect ratio kept, centred on white); tiny images
    are enlarged with nearest-neighbour sampling so their pixels stay visible. ``row_labels`` (optional)
    are written under each row.
    """
    n_cols = len(columns)
    caption = 16 if row_labels else 0
    row_h = cell + pad + caption
    width = pad + n_cols * (cell + pad)
    height = header + pad + len(rows) * row_h
    sheet = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(sheet)
    font, small = _font(13), _font(11)
    for j, name in enumerate(columns):
        cx = pad + j * (cell + pad) + cell / 2
        d.text((cx, header - 8), name, fill="black", font=font, anchor="ms")
    for i, row in enumerate(rows):
        top = header + pad + i * row_h
        for j, arr in enumerate(row):
            if arr is None:
                continue
            im = Image.fromarray(np.asarray(arr, dtype=np.uint8))
            scale = cell / max(im.size)
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            resample = Image.Resampling.NEAREST if scale >= 3 else Image.Resampling.LANCZOS
            im = im.resize(size, resample)
            x = pad + j * (cell + pad) + (cell - size[0]) // 2
            sheet.paste(im, (x, top + (cell - size[1]) // 2))
        if i < len(row_labels):
            d.text((pad, top + cell + 2), row_labels[i], fill="#333333", font=small, anchor="la")
    sheet.save(path)
