"""Name -> loader for every colorization method, with one loaded instance per process.

Loaders import torch and build their networks; they never download anything. A method whose weights
are missing raises :class:`Unavailable` with the catalogue's reason, so nothing ever runs on random weights.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from worker.colorizers.base import Colorizer
from worker.colorizers.catalogue import CATALOGUE


class Unavailable(RuntimeError):
    """The method cannot run here (unknown name or missing weights)."""


@dataclass(frozen=True)
class LoadContext:
    weights_dir: Path
    device: str  # "cpu", "cuda", "cuda:0", ...


Loader = Callable[[LoadContext], Colorizer]
LOADERS: dict[str, Loader] = {}
# Modules that register loaders/fetchers when imported (add yours here).
METHOD_MODULES = ("worker.colorizers.nets.loaders", "worker.colorizers.exemplar")
_cache: dict[tuple[str, str, str], Colorizer] = {}
_lock = threading.Lock()


def loader(name: str) -> Callable[[Loader], Loader]:
    """Decorator: register the function that builds method ``name``."""

    def wrap(fn: Loader) -> Loader:
        LOADERS[name] = fn
        return fn

    return wrap


def import_method_modules() -> None:
    """Import the method modules (torch): each registers its loader and fetchers on import."""
    import importlib

    for module in METHOD_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def get_colorizer(name: str, weights_dir: Path, device: str = "cpu") -> Colorizer:
    """The loaded colorizer for ``name`` (cached per process, device and weights directory)."""
    info = CATALOGUE.get(name)
    if info is None:
        raise Unavailable(f"unknown method {name!r}")
    reason = info.unavailable_reason(Path(weights_dir))
    if reason:
        raise Unavailable(f"method {name!r} is unavailable: {reason}")
    key = (name, str(weights_dir), device)
    with _lock:
        if key not in _cache:
            if name not in LOADERS:
                import_method_modules()
            if name not in LOADERS:
                raise Unavailable(f"method {name!r} has no loader in this build")
            _cache[key] = LOADERS[name](LoadContext(Path(weights_dir), device))
        return _cache[key]


def clear_cache() -> None:
    with _lock:
        _cache.clear()
