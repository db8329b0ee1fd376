"""Model cards: a Markdown file beside each exported weights file (data, epochs, wall time, metrics, date)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

METRIC_NAMES = {
    "mse": "MSE (ab/128)",
    "mae": "MAE (ab/128)",
    "acc_eq9": "eq. 9 accuracy (ε = 0.02)",
    "auc": "AuC (0-150)",
    "psnr": "PSNR (dB, RGB)",
    "chroma": "mean chroma",
}


def metrics_table(rows: dict[str, dict[str, float]]) -> str:
    keys = [k for k in METRIC_NAMES if any(k in r for r in rows.values())]
    lines = ["| prediction | " + " | ".join(METRIC_NAMES[k] for k in keys) + " |"]
    lines.append("|---" * (len(keys) + 1) + "|")
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[k]:.4f}" if k in row else "" for k in keys) + " |")
    return "\n".join(lines)


def write_card(path: Path, meta: dict[str, Any]) -> None:
    """Write the model card for the weights described by ``meta`` (see the trainer for the keys)."""
    hp = meta.get("hyperparameters", {})
    lines = [
        f"# Model card: `{meta['arch']}`",
        "",
        f"- Architecture: {meta.get('description', meta['arch'])}",
        f"- Weights: `{meta.get('weights_file', '')}` "
        f"(float16 state_dict, {meta.get('parameters', 0):,} parameters)",
        f"- Trained by: `{meta.get('command', 'colorlab train')}`",
        f"- Data: {meta.get('data', '')} — {meta.get('train_photos', 0)} training photos, "
        f"{meta.get('val_photos', 0)} validation photos ({meta.get('split', '')})",
        f"- Crops: {hp.get('size')}×{hp.get('size')} random crops "
        f"(short side zoom up to ×{hp.get('max_zoom')}), "
        "random left-right flips; validation: centre crops",
        "- Hyperparameters: " + ", ".join(f"{k} {v}" for k, v in hp.items()),
        f"- Epochs: {meta.get('epochs_run')} run, weights from epoch {meta.get('best_epoch')}"
        f" ({meta.get('stop_reason', '')})",
        f"- Wall time: {meta.get('wall_time_s', 0) / 60:.1f} min on {meta.get('machine', 'CPU')}",
        f"- Date: {meta.get('date', '')}",
        "- Normalisation: input L/50 - 1 (L in [0, 100]); output ab/128 (tanh); served at 256×256, "
        "ab upsampled to the photo's size and joined with its own L.",
        "",
        "## Validation metrics (at the training crop size)",
        "",
        metrics_table(meta.get("validation", {})),
        "",
    ]
    if meta.get("history"):
        lines += [
            "## History",
            "",
            "| epoch | train loss | val " + meta.get("monitor", "") + " |",
            "|---|---|---|",
        ]
        for row in meta["history"]:
            lines.append(f"| {row['epoch']} | {row['train_loss']:.5f} | {row['val']:.5f} |")
        lines.append("")
    if meta.get("extra"):
        lines += [meta["extra"], ""]
    Path(path).write_text("\n".join(lines), encoding="utf-8")
