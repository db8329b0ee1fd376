"""The exported weights file of a net we train: ``{"arch", "state_dict" (float16), "config", "meta"}``.

Serving reads it with :func:`load_weights` (float32 tensors); training writes it with :func:`save_weights`.
Files are written atomically. Resumable training checkpoints are another format
(:mod:`worker.colorizers.training.checkpoint`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(obj, tmp)
    except RuntimeError as exc:  # torch's word for a file it cannot open or write
        tmp.unlink(missing_ok=True)
        raise OSError(f"cannot write {path}: {exc}") from None
    os.replace(tmp, path)


def half_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors to float16 (halves the file; BatchNorm counters and ints kept as they are)."""
    return {
        k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
        for k, v in state_dict.items()
    }


def save_weights(
    path: Path, arch: str, state_dict: dict[str, torch.Tensor], config: dict[str, Any], meta: dict[str, Any]
) -> None:
    atomic_save(
        {"arch": arch, "state_dict": half_state_dict(state_dict), "config": config, "meta": meta}, path
    )


def refresh_meta(path: Path, meta: dict[str, Any]) -> None:
    """Replace the record (``meta``) of the weights file at ``path``, its weights untouched (as stored):
    a training run's best epoch is exported once, its record (epochs run, why it stopped) grows after."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    blob["meta"] = meta
    atomic_save(blob, path)


def load_weights(path: Path, expected_arch: str | None = None) -> dict[str, Any]:
    """The weights file's dict with a float32 state_dict; checks ``arch`` when given. A file that is not
    one (another format, truncated, not torch at all) is a ValueError saying so."""
    try:
        blob: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # unpickling junk fails in many ways (UnpicklingError, IndexError, ...)
        raise ValueError(f"{path}: not a ColorLab weights file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("state_dict"), dict):
        raise ValueError(f"{path}: not a ColorLab weights file (no state_dict)")
    if expected_arch is not None and blob.get("arch") != expected_arch:
        raise ValueError(f"{path}: holds weights for {blob.get('arch')!r}, not {expected_arch!r}")
    blob["state_dict"] = {
        k: (v.float() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()
    }
    return blob
