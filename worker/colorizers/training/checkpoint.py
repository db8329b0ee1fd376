"""Checkpoints: resumable training state (float32, not committed).

A checkpoint holds every network and optimiser state, the epoch, the early-stopping state, the history and
the elapsed wall time. The exported weights file that serving loads is another format
(:mod:`worker.colorizers.nets.weights_file`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from worker.colorizers.nets.weights_file import atomic_save


def refuse_changed_options(
    checkpoint: Path, stored: Mapping[str, str], current: Mapping[str, Any], fields: Sequence[str]
) -> None:
    """ValueError naming each of ``fields`` (the options that define a run: data, size, learning rate, ...)
    whose value differs from the one the checkpoint's run began with: a resumed run that took other options
    half-applied them (Adam keeps its stored learning rate) and its card claimed them for the whole run.
    ``data`` is compared as resolved paths; an option the checkpoint does not record is not compared."""
    changed = []
    for name in fields:
        if name not in stored:
            continue
        before, now = stored[name], current[name]
        if name == "data":
            same = [Path(p).resolve() for p in _paths(before)] == [Path(p).resolve() for p in _paths(now)]
        else:
            same = before == str(now)
        if not same:
            changed.append(f"{name} {now} (the checkpoint's: {before})")
    if changed:
        raise ValueError(
            f"{checkpoint} was made with other options; resume with the ones its run began with, or start "
            f"a new run with another --out: {'; '.join(changed)}"
        )


def _paths(value: Any) -> list[str]:
    """A data option as a list of paths: one path, a list of them, or a list as its str() stored it."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    text = str(value)
    if text.startswith("[") and text.endswith("]"):
        return [part.strip().strip("'\"") for part in text[1:-1].split(",") if part.strip()]
    return [text]


def torch_rng_states(device: str) -> dict[str, Any]:
    """The torch RNG states a resume restores: the CPU's, and on a CUDA device its own too (dropout and noise
    drawn there use the device's generator; without it a GPU resume was exact only in the data order)."""
    states: dict[str, Any] = {"torch_rng": torch.get_rng_state()}
    if device.startswith("cuda") and torch.cuda.is_available():
        states["cuda_rng"] = torch.cuda.get_rng_state_all()
    return states


def restore_torch_rng_states(state: Mapping[str, Any], device: str) -> None:
    """Undo :func:`torch_rng_states`; a checkpoint made on another count of GPUs (or on the CPU) restores the
    CPU's state only."""
    torch.set_rng_state(state["torch_rng"])
    cuda = state.get("cuda_rng")
    if cuda is not None and device.startswith("cuda") and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


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
