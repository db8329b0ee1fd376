"""Loaded colorizers, one instance per process, device and weights folder.

A method's ``load`` builds its network from verified weights and never downloads anything; a method that
is unknown or whose weights are missing raises :class:`Unavailable` with the reason, so nothing ever runs
on random weights.
"""

from __future__ import annotations

import threading
from pathlib import Path

from worker.colorizers import methods
from worker.colorizers.base import Colorizer
from worker.colorizers.method_info import LoadContext, Unavailable

_cache: dict[tuple[str, str, str], Colorizer] = {}
_lock = threading.Lock()

__all__ = ["Unavailable", "clear_cache", "get_colorizer", "resolve_device"]


def resolve_device(name: str) -> str:
    """The torch device to run on: ``auto`` is CUDA where present, else the CPU. A name torch does not know,
    or a device this machine lacks, is a ValueError that says so (torch's own errors come much later)."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            found = f"{count} CUDA device(s)" if count else "no CUDA device"
            raise ValueError(f"device {name!r} is not available: this machine has {found}; use cpu")
    elif device.type != "cpu":
        raise ValueError(f"device {name!r} is not supported: use cpu, cuda, cuda:N or auto")
    return name


def get_colorizer(name: str, weights_dir: Path, device: str = "cpu") -> Colorizer:
    """The loaded colorizer for ``name`` (cached per process, device and weights directory)."""
    info = methods.get(name)
    if info is None:
        raise Unavailable(f"unknown method {name!r}")
    info.require_available(Path(weights_dir))
    key = (name, str(weights_dir), device)
    with _lock:
        if key not in _cache:
            try:
                _cache[key] = info.load(LoadContext(Path(weights_dir), device))
            except Unavailable as exc:  # a file found missing or damaged as it was about to be read
                raise Unavailable(f"method {name!r} is unavailable: {exc}") from None
        return _cache[key]


# What loading a damaged weights file of the right size raises (torch's reader, a state dict that misfits).
# The worker retries it as any failure (an operator may fetch the file again); the CLI says it in one line.
LOAD_ERRORS = (RuntimeError, ValueError, EOFError, KeyError)


def unloadable(name: str, weights_dir: Path, exc: Exception) -> Unavailable:
    """What to say when ``name``'s weights are present but cannot be loaded."""
    return Unavailable(
        f"method {name!r} is unavailable: its weights in {weights_dir} cannot be loaded "
        f"({exc.__class__.__name__}: {str(exc)[:200]}); `colorlab weights list` checks them"
    )


def clear_cache() -> None:
    with _lock:
        _cache.clear()
