"""The web side's view of the colorization methods (torch-free)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from backend import estimates
from backend.config import Settings
from worker.colorizers.catalogue import CATALOGUE, MethodInfo, validate_params

# Methods registered only for tests are hidden from the product (name prefix reserved for tests).
_HIDDEN_PREFIX = "_"


# Listing order: our default, the report's three nets, Zhang et al.'s, then the iterative exemplar.
_ORDER = ("unet-bins", "cnn", "fusion", "gan", "eccv16", "siggraph17", "exemplar")


def public_methods() -> list[MethodInfo]:
    shown = [m for m in CATALOGUE if not m.name.startswith(_HIDDEN_PREFIX)]
    return sorted(shown, key=lambda m: _ORDER.index(m.name) if m.name in _ORDER else len(_ORDER))


def default_method() -> str:
    return CATALOGUE.default_method


def get_method(name: str) -> MethodInfo | None:
    return CATALOGUE.get(name) if isinstance(name, str) else None


def validate(info: MethodInfo, raw: dict[str, Any]) -> dict[str, Any]:
    return validate_params(info, raw)


def methods_out(settings: Settings, session: Session | None = None) -> list[dict[str, Any]]:
    """The methods as GET /methods lists them (without a session: the benchmarked time estimates)."""
    out = []
    for m in public_methods():
        reason = m.unavailable_reason(settings.weights_dir)
        defaults = m.defaults()
        presets = [
            {
                "name": p.name,
                "label": p.label,
                "summary": p.summary,
                "options": dict(p.options),
                "expected_seconds": estimates.expected_seconds(session, m.name, {**defaults, **p.options}),
            }
            for p in m.presets
        ]
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
                "expected_seconds": estimates.expected_seconds(session, m.name, defaults),
                "admin_hint": f"colorlab weights fetch {' '.join(m.weights)}" if reason else None,
            }
        )
    return out
