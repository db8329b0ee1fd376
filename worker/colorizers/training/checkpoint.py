"""Checkpoints: resumable training state (float32, not committed).

A checkpoint holds every network and optimiser state, the epoch, the early-stopping state, the history and
the elapsed wall time. The exported weights file that serving loads is another format
(:mod:`worker.colorizers.nets.weights_file`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from worker.colorizers.nets.weights_file import atomic_save


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_save(state, path)


def load_checkpoint(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """The checkpoint's state; a file that is not one is a ValueError saying so (not an unpickling trace)."""
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except OSError:
        raise
    except Exception as exc:  # unpickling junk fails in many ways (UnpicklingError, IndexError, ...)
        raise ValueError(f"{path}: not a ColorLab training checkpoint ({type(exc).__name__})") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: not a ColorLab training checkpoint")
    return checkpoint
