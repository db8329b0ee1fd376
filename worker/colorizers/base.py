"""The contract between the worker and every colorizer (torch-free).

A colorizer predicts the ab chrominance of a photo from its lightness. The caller
(:mod:`worker.colorizers.pipeline`: ``predict_many`` for the worker, ``colorize_lightness`` for one photo)
computes L at full resolution, hands the colorizer the L plane, and recombines the predicted ab (upsampled
to full size) with the original L, so every method keeps the photo's own luminance and works at any photo
size.
"""

from __future__ import annotations

import io
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


class JobCancelled(Exception):
    """Raised by a progress callback to stop an iterative colorizer between iterations."""


class StopEarly(Exception):
    """Raised by a progress callback after an iteration to end an iterative colorizer there, keeping what
    it has made so far (the job's time is nearly up: a result short of its iterations beats none)."""


@dataclass(frozen=True)
class IterationState:
    """Where an iterative colorizer stands after ``step`` iterations: enough to go on from there in another
    process (a worker restarted mid-job) instead of starting again. ``arrays``: its unknowns (float32);
    ``values``: scalars it needs to continue the same way. An optimiser's own memory (L-BFGS's curvature
    pairs) is not kept: it is rebuilt in a few iterations, so a resumed run ends near, not exactly at, an
    uninterrupted one."""

    step: int
    arrays: Mapping[str, np.ndarray]
    values: Mapping[str, float] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """An ``.npz`` file (no pickles) of the arrays, the values and the step."""
        buffer = io.BytesIO()
        values = np.array([self.step, *self.values.values()], dtype=np.float64)
        names = np.array(list(self.values), dtype=np.str_)
        arrays: dict[str, Any] = {f"a_{k}": v for k, v in self.arrays.items()}
        np.savez(buffer, __values__=values, __names__=names, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> IterationState:
        """The state :meth:`to_bytes` wrote; ValueError for anything else."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                values, names = npz["__values__"], npz["__names__"]
                arrays = {k[2:]: npz[k] for k in npz.files if k.startswith("a_")}
        except (OSError, KeyError, EOFError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a colorizer's saved state: {exc}") from None
        if values.ndim != 1 or values.size != names.size + 1:
            raise ValueError("not a colorizer's saved state: its values do not match their names")
        return cls(int(values[0]), arrays, {str(n): float(v) for n, v in zip(names, values[1:], strict=True)})


@dataclass(frozen=True)
class Progress:
    """One progress report from a running colorizer."""

    step: int
    total: int
    message: str = ""
    losses: Mapping[str, float] = field(default_factory=dict)
    # Optional live preview, rendered only when the consumer asks (at most every few seconds):
    # a zero-argument function returning an RGB uint8 image (any size) of the current result.
    preview: Callable[[], np.ndarray] | None = None
    # Optional: the colorizer's state after this step, made only when the consumer asks (now and then), to
    # be handed back as ``resume`` to go on from this step after an interruption.
    state: Callable[[], IterationState] | None = None


ProgressCallback = Callable[[Progress], None]


class Colorizer(Protocol):
    """A loaded colorization method, ready to run (weights loaded, on its device)."""

    name: str

    def predict_ab(
        self,
        lightness: np.ndarray,
        *,
        reference: np.ndarray | None,
        params: Mapping[str, Any],
        progress: ProgressCallback | None,
    ) -> np.ndarray:
        """Predict ab for one photo.

        lightness: float32 array (H, W), CIE L in [0, 100], full input resolution.
        reference: RGB uint8 array (h, w, 3) for methods that need a reference image, else None.
        params: validated options (see the method's file in :mod:`worker.colorizers.methods`).
        progress: call it with :class:`Progress` now and then; it may raise :class:`JobCancelled` (stop,
        nothing kept) or, after an iteration, :class:`StopEarly` (return the result made so far).
        Returns float32 array (h', w', 2): a and b in Lab units at any working resolution with the
        input's aspect ratio; the pipeline upsamples it to (H, W).
        """
        ...


@runtime_checkable
class ResumableColorizer(Colorizer, Protocol):
    """An iterative colorizer that can go on from an :class:`IterationState` its progress reports gave."""

    resumable: bool  # the mark isinstance() looks for (every colorizer has predict_ab)

    def predict_ab(
        self,
        lightness: np.ndarray,
        *,
        reference: np.ndarray | None,
        params: Mapping[str, Any],
        progress: ProgressCallback | None,
        resume: IterationState | None = None,
    ) -> np.ndarray:
        """:meth:`Colorizer.predict_ab`, going on after ``resume.step`` from that state when it fits this
        photo and these options (one that does not, e.g. from an older version, is ignored)."""
        ...


@runtime_checkable
class BatchColorizer(Colorizer, Protocol):
    """A feed-forward colorizer that can predict many photos in one forward pass."""

    def predict_ab_batch(self, lightness: list[np.ndarray], *, params: Mapping[str, Any]) -> list[np.ndarray]:
        """Like :meth:`predict_ab` for several photos (no reference, no progress)."""
        ...


class PredictsOneAsABatch(ABC):
    """Base of feed-forward colorizers: one photo is a batch of one (no reference, no progress)."""

    @abstractmethod
    def predict_ab_batch(
        self, lightness: list[np.ndarray], *, params: Mapping[str, Any] | None = None
    ) -> list[np.ndarray]: ...

    def predict_ab(
        self,
        lightness: np.ndarray,
        *,
        reference: np.ndarray | None = None,
        params: Mapping[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        return self.predict_ab_batch([lightness], params=params or {})[0]
