"""The study results page's plots: share judged real and mean rating per condition, as bar charts with 95%
interval whiskers in inline SVG, built on the server (no script, CSP-safe: styling by classes in admin.css
and presentation attributes only)."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    low: float | None
    high: float | None
    n: int  # answers
    participants: int
    real: bool = False


def bar_chart(
    bars: list[Bar],
    *,
    title: str,
    vmax: float,
    ticks: list[float],
    fmt: str,
    tick_fmt: str = "",
    unit: str = "",
) -> Markup:
    """Vertical bars with error whiskers; ``fmt`` formats values (e.g. "{:.0%}" or "{:.2f}"). ``title`` is its
    accessible name; the page shows it as a heading that wraps (:class:`Chart`), not drawn on one line."""
    # The top margin leaves room for a value label above a full bar's whisker.
    width, height = 120 + 110 * max(len(bars), 1), 314
    # The lines under each bar are spaced for the larger type a phone's narrow chart uses (admin.css).
    left, right, top, bottom = 56, 16, 30, 84
    plot_w, plot_h = width - left - right, height - top - bottom

    def y(v: float) -> float:
        return top + plot_h * (1 - max(0.0, min(v, vmax)) / vmax)

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    for t in ticks:
        ty = y(t)
        out.append(
            f'<line class="chart-gridline" x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
        )
        out.append(
            f'<text class="chart-tick" x="{left - 8}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{escape((tick_fmt or fmt).format(t))}</text>"
        )
    slot = plot_w / max(len(bars), 1)
    bar_w = min(64.0, slot * 0.6)
    for i, bar in enumerate(bars):
        cx = left + slot * (i + 0.5)
        cls = "chart-bar chart-bar-real" if bar.real else "chart-bar"
        if bar.value is not None:
            by = y(bar.value)
            out.append(
                f'<rect class="{cls}" x="{cx - bar_w / 2:.1f}" y="{by:.1f}" width="{bar_w:.1f}" '
                f'height="{top + plot_h - by:.1f}" rx="3"><title>{escape(bar.label)}: '
                f"{escape(fmt.format(bar.value))} ({bar.n} answers from {bar.participants} participants)"
                "</title></rect>"
            )
            if bar.low is not None and bar.high is not None:
                lo, hi = y(bar.low), y(bar.high)
                out.append(
                    f'<line class="chart-whisker" x1="{cx:.1f}" x2="{cx:.1f}" y1="{lo:.1f}" y2="{hi:.1f}"/>'
                )
                for wy in (lo, hi):
                    out.append(
                        f'<line class="chart-whisker" x1="{cx - 8:.1f}" x2="{cx + 8:.1f}" '
                        f'y1="{wy:.1f}" y2="{wy:.1f}"/>'
                    )
            label_y = min(by, y(bar.high) if bar.high is not None else by) - 6
            out.append(
                f'<text class="chart-value" x="{cx:.1f}" y="{label_y:.1f}" text-anchor="middle">'
                f"{escape(fmt.format(bar.value))}{escape(unit)}</text>"
            )
        else:
            out.append(
                f'<text class="chart-empty" x="{cx:.1f}" y="{top + plot_h - 8}" text-anchor="middle">'
                "no data</text>"
            )
        out.append(
            f'<text class="chart-label" x="{cx:.1f}" y="{top + plot_h + 22}" text-anchor="middle">'
            f"{escape(bar.label)}</text>"
        )
        out.append(
            f'<text class="chart-n" x="{cx:.1f}" y="{top + plot_h + 43}" text-anchor="middle">'
            f"n = {bar.n}</text>"
        )
        out.append(  # the interval counts each participant once: say how many there are
            f'<text class="chart-n" x="{cx:.1f}" y="{top + plot_h + 63}" text-anchor="middle">'
            f"{bar.participants} {'person' if bar.participants == 1 else 'people'}</text>"
        )
    out.append(
        f'<line class="chart-axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
    )
    out.append("</svg>")
    return Markup("".join(out))


@dataclass(frozen=True)
class Chart:
    title: str  # shown above the chart, where it wraps at a phone's width
    svg: Markup


def study_charts(summary: dict) -> dict[str, Chart]:
    """The charts of the parts the study has: "real" (part 1, share judged real) and "rating" (part 2, mean
    rating). A study of one part gets only its own chart, not an empty one for the part it has not."""
    parts = summary["parts"]
    charts: dict[str, Chart] = {}
    if 1 in parts:
        real_title = "Judged a real photo (95% Wilson interval, by participant)"
        real_bars = [_bar(c, c["part1"], c["part1"]["share_real"]) for c in summary["conditions"]]
        charts["real"] = Chart(
            real_title,
            bar_chart(real_bars, title=real_title, vmax=1.0, ticks=[0, 0.25, 0.5, 0.75, 1.0], fmt="{:.0%}"),
        )
    if 2 in parts:
        rating_title = "Mean rating, 1-4 stars (95% bootstrap interval, by participant)"
        rating_bars = [_bar(c, c["part2"], c["part2"]["mean"]) for c in summary["conditions"]]
        charts["rating"] = Chart(
            rating_title,
            bar_chart(
                rating_bars,
                title=rating_title,
                vmax=4.0,
                ticks=[0, 1, 2, 3, 4],
                fmt="{:.2f}",
                tick_fmt="{:g}",
            ),
        )
    return charts


def _bar(condition: dict, part: dict, value: float | None) -> Bar:
    """One condition's bar of one part's figures."""
    return Bar(
        condition["label"],
        value,
        part["low"],
        part["high"],
        part["n"],
        part["participants"],
        condition["condition"] == "real",
    )
