"""The methods an evaluation scores: loading them (every problem reported at once) and colorizing photos with
them through :func:`~worker.colorizers.pipeline.predict_many`, plus the ``gray`` baseline (ab = 0)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.colorizers import methods
from worker.colorizers.base import Colorizer
from worker.colorizers.evaluation import EvaluationError
from worker.colorizers.evaluation.report import GRAY
from worker.colorizers.pipeline import compose, predict_many


@dataclass
class Contestant:
    name: str
    needs_reference: bool
    params: dict[str, Any]
    colorizer: Colorizer | None  # None: the gray baseline

    def colorize(
        self, lightness: list[np.ndarray], references: Sequence[np.ndarray | None], batch_size: int
    ) -> list[np.ndarray]:
        """The delivered RGB images (uint8, each photo's own size) for these L planes."""
        if self.colorizer is None:
            return [compose(plane, np.zeros((*plane.shape, 2), dtype=np.float32)) for plane in lightness]
        return predict_many(
            self.colorizer, lightness, params=self.params, references=references, batch_size=batch_size
        )


GRAY_BASELINE = Contestant(GRAY, False, {}, None)


def load_contestants(
    names: Sequence[str],
    weights_dir: Path,
    device: str,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    bf16: bool = False,
    overrides: Mapping[str, Path] | None = None,
) -> list[Contestant]:
    """Load every requested method, or raise EvaluationError listing each one that cannot run and why.

    ``params``: raw options per method name (validated against the method's options, e.g. exemplar
    iterations).
    """
    from worker.colorizers.loading import get_colorizer
    from worker.colorizers.method_info import ParamError, Unavailable, validate_params

    problems: list[str] = []
    loaded: list[Contestant] = []
    for name in sorted(set(params or {}) - set(names)):
        problems.append(f"{name}: options given for a method that is not evaluated")
    for name in names:
        info = methods.get(name)
        if info is None:
            known = ", ".join(sorted(m.name for m in methods.METHODS)) or "none"
            problems.append(f"{name}: unknown method (known: {known}; 'gray' is always included)")
            continue
        try:
            options = validate_params(info, (params or {}).get(name, {}))
        except ParamError as exc:
            problems.append(f"{name}: {exc}")
            continue
        try:
            colorizer = get_colorizer(name, weights_dir, device, bf16=bf16, overrides=overrides)
        except Unavailable as exc:
            problems.append(f"{name}: {exc}")
            continue
        loaded.append(Contestant(name, info.needs_reference, options, colorizer))
    if problems:
        raise EvaluationError("cannot evaluate:\n  " + "\n  ".join(problems))
    return loaded
