"""Loaded colorizers, one instance per process, device and weights folder.

A method's ``load`` builds its network from verified weights and never downloads anything; a method that
is unknown or whose weights are missing raises :class:`Unavailable` with the reason, so nothing ever runs
on random weights.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Mapping
from pathlib import Path

from worker.colorizers import methods
from worker.colorizers.base import Colorizer
from worker.colorizers.manifest import repair_hint
from worker.colorizers.method_info import LoadContext, Unavailable

_cache: dict[tuple[str, str, str, bool, tuple[tuple[str, str], ...]], Colorizer] = {}
_lock = threading.Lock()
log = logging.getLogger(__name__)

__all__ = ["Unavailable", "Unloadable", "clear_cache", "get_colorizer", "resolve_device"]


class Unloadable(Unavailable):
    """Weights that are present (and of the pinned sha256, where one is pinned) but cannot be read. The worker
    retries its job as any failure: an operator may fetch the file again meanwhile."""


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


def get_colorizer(
    name: str,
    weights_dir: Path,
    device: str = "cpu",
    *,
    bf16: bool = True,
    overrides: Mapping[str, Path] | None = None,
) -> Colorizer:
    """The loaded colorizer for ``name`` (cached per process, device, weights directory and ``bf16``: bfloat16
    autocast where the CPU has it natively).

    :class:`Unavailable` when it cannot run: unknown, weights missing or of the wrong sha256, or
    :class:`Unloadable` when its weights are present but cannot be read.
    """
    info = methods.get(name)
    if info is None:
        raise Unavailable(f"unknown method {name!r}")
    given = dict(overrides or {})
    info.require_available(Path(weights_dir), given)
    key = (name, str(weights_dir), device, bf16, tuple(sorted((k, str(v)) for k, v in given.items())))
    with _lock:
        if key not in _cache:
            try:
                _cache[key] = info.load(LoadContext(Path(weights_dir), device, bf16, given))
            except Unavailable as exc:  # a file found missing or damaged as it was about to be read
                raise Unavailable(f"method {name!r} is unavailable: {exc}") from None
            except MemoryError:
                raise
            except Exception as exc:  # a damaged file fails in torch's reader in any of a dozen ways
                log.debug("method %s: its weights in %s cannot be loaded", name, weights_dir, exc_info=True)
                fixes = " or ".join(repair_hint(w) for w in info.weights)
                raise Unloadable(
                    f"method {name!r} is unavailable: its weights cannot be loaded ({_why_unreadable(exc)}): "
                    f"{fixes}"
                ) from None
        return _cache[key]


def _why_unreadable(exc: Exception) -> str:
    """torch's reader on a file that is not its own: an unpickler error, an empty stack (IndexError), an early
    end, or a zip without its directory; anything else (a state dict that misfits) in its first sentence."""
    text = str(exc).strip()
    if isinstance(exc, pickle.UnpicklingError | EOFError | IndexError) or "PytorchStreamReader" in text:
        return "not a PyTorch weights file, or cut short"
    first = text.splitlines()[0].split(". ")[0][:160] if text else ""
    return f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__


def clear_cache() -> None:
    with _lock:
        _cache.clear()
