"""Checkpoints (resumable training state) and exported weight files (what the colorizers load).

- A checkpoint holds every network and optimiser state, the epoch, the early-stopping state, the history
  and the elapsed wall time: :func:`save_checkpoint` / :func:`load_checkpoint` (float32, not committed).
- A weights file holds only the served network: ``{"arch", "state_dict" (float16), "config", "meta"}``;
  :func:`load_weights` returns float32 tensors. Files are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def _atomic_save(obj: Any, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    _atomic_save(state, path)


def load_checkpoint(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=False)


def half_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors to float16 (halves the file; BatchNorm counters and ints kept as they are)."""
    return {
        k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
        for k, v in state_dict.items()
    }


def save_weights(
    path: Path, arch: str, state_dict: dict[str, torch.Tensor], config: dict, meta: dict
) -> None:
    _atomic_save(
        {"arch": arch, "state_dict": half_state_dict(state_dict), "config": config, "meta": meta}, path
    )


def load_weights(path: Path, expected_arch: str | None = None) -> dict[str, Any]:
    """The weights file's dict with a float32 state_dict; checks ``arch`` when given."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if expected_arch is not None and blob.get("arch") != expected_arch:
        raise ValueError(f"{path}: holds weights for {blob.get('arch')!r}, not {expected_arch!r}")
    blob["state_dict"] = {
        k: (v.float() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()
    }
    return blob
