"""The web side's view of the colorization methods (torch-free: :mod:`worker.colorizers.methods`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from backend import estimates
from backend.config import Settings
from worker.colorizers import methods
from worker.colorizers.method_info import MethodInfo


def public_methods() -> list[MethodInfo]:
    """The methods, in display order."""
    return list(methods.METHODS)


def default_method(with_reference: bool = False) -> str:
    return methods.default_method(with_reference).name


def get_method(name: str) -> MethodInfo | None:
    return methods.get(name) if isinstance(name, str) else None


def methods_out(settings: Settings, session: Session | None = None) -> list[dict[str, Any]]:
    """The methods as GET /methods lists them (without a session: the benchmarked time estimates)."""
    out = []
    estimator = estimates.Estimator(session)  # one look at the recent jobs of each method, for all presets
    for m in public_methods():
        reason = m.unavailable_reason(settings.weights_dir)
        weight_names = " ".join(w.name for w in m.weights)
        defaults = m.defaults()
        presets = []
        for p in m.presets:
            expected = estimator.expected_seconds(m.name, {**defaults, **p.options})
            presets.append(
                {
                    "name": p.name,
                    "label": p.label,
                    "summary": p.summary,
                    "options": dict(p.options),
                    "default": p.default,
                    "expected_seconds": expected,
                    "over_time_limit": expected > settings.job_time_limit,
                }
            )
        out.append(
            {
                "name": m.name,
                "title": m.title,
                "summary": m.summary or m.title,
                "description": m.description,
                "params": [{**asdict(p), "choices": list(p.choices), "ends": list(p.ends)} for p in m.params],
                "needs_reference": m.needs_reference,
                "iterative": m.iterative,
                "batchable": m.batchable,
                "available": reason is None,
                "unavailable_reason": reason,
                "paper": m.paper,
                "default": m.default,
                "presets": presets,
                "expected_seconds": estimator.expected_seconds(m.name, defaults),
                "time_limit_seconds": settings.job_time_limit,
                "admin_hint": f"colorlab weights fetch {weight_names}" if reason else None,
            }
        )
    return out
