"""The torch-free catalogue of colorization methods: what the web front end and the API describe.

Each method lists its options with defaults and ranges; :func:`validate_params` turns raw form/JSON values
into typed, range-checked options or raises :class:`ParamError` with a message for the user.
Availability depends only on whether the method's weight files are present (see ``manifest``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from worker.colorizers import manifest

ParamType = Literal["int", "float", "choice", "bool", "hints"]


class ParamError(ValueError):
    """A user-supplied option is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    ends: tuple[str, ...] = ()  # plain-words labels of a slider's (minimum, maximum) ends

    def parse(self, raw: Any) -> Any:
        """Convert one raw value (a form string or a JSON value) to this parameter's type, checked."""
        if self.type == "hints":
            from worker.colorizers.hints import HintError, parse_hints

            try:
                return parse_hints(raw)
            except HintError as exc:
                raise ParamError(str(exc)) from None
        if self.type == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ParamError(f"option {self.name!r} must be true or false, got {raw!r}")
        if self.type == "choice":
            text = str(raw).strip()
            if text not in self.choices:
                choices = ", ".join(self.choices)
                raise ParamError(f"option {self.name!r} must be one of {choices}; got {raw!r}")
            return text
        try:
            if isinstance(raw, bool):
                raise ValueError
            if self.type == "int":
                value: float = int(str(raw).strip())
            else:
                value = float(str(raw).strip())
                if not math.isfinite(value):
                    raise ValueError
        except ValueError:
            kind = "an integer" if self.type == "int" else "a number"
            raise ParamError(f"option {self.name!r} must be {kind}, got {raw!r}") from None
        if self.minimum is not None and value < self.minimum:
            raise ParamError(f"option {self.name!r} must be ≥ {self.minimum:g}, got {value:g}")
        if self.maximum is not None and value > self.maximum:
            raise ParamError(f"option {self.name!r} must be ≤ {self.maximum:g}, got {value:g}")
        return value


@dataclass(frozen=True)
class Preset:
    """A named set of options offered to people instead of the raw knobs (e.g. Quick · Balanced · Paper)."""

    name: str
    label: str
    summary: str  # one line, plain words
    options: Mapping[str, Any]


@dataclass(frozen=True)
class MethodInfo:
    name: str
    title: str
    description: str  # what it is, for the details disclosure and GET /methods
    params: tuple[Param, ...] = ()
    needs_reference: bool = False
    weights: tuple[str, ...] = ()  # manifest names
    weights_any: bool = False  # True: any one of ``weights`` suffices (alternatives, preferred first)
    iterative: bool = False  # reports step-by-step progress with previews
    batchable: bool = False  # feed-forward: the worker may batch several queued jobs
    paper: str = ""
    summary: str = ""  # one line in plain words: what a person gets (the upload page's method card)
    presets: tuple[Preset, ...] = ()  # first one is the default choice
    # Iterations an iterative method runs for given options (for time estimates); None: not iterative.
    planned_iterations: Callable[[Mapping[str, Any]], int] | None = None

    def iterations_for(self, params: Mapping[str, Any]) -> int | None:
        return int(self.planned_iterations(params)) if self.planned_iterations is not None else None

    default: bool = False  # the method used when a request names none (exactly one method)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def unavailable_reason(self, weights_dir: Path) -> str | None:
        reasons = [r for w in self.weights if (r := manifest.missing_reason(w, weights_dir))]
        if self.weights_any and len(reasons) < len(self.weights):
            return None
        if self.weights_any and reasons:
            return "needs one of: " + "; or ".join(reasons)
        return "; ".join(reasons) or None


@dataclass
class Catalogue:
    methods: dict[str, MethodInfo] = field(default_factory=dict)

    def add(self, info: MethodInfo) -> MethodInfo:
        self.methods[info.name] = info
        return info

    def get(self, name: str) -> MethodInfo | None:
        return self.methods.get(name)

    def __iter__(self):
        return iter(self.methods.values())

    @property
    def default_method(self) -> str:
        """The name of the method used when none is named (upload page, POST /colorize, the CLI)."""
        return next(m.name for m in self.methods.values() if m.default)


CATALOGUE = Catalogue()


def validate_params(info: MethodInfo, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Typed options for ``info`` from raw values; unknown names and bad values raise ParamError."""
    unknown = sorted(set(raw) - {p.name for p in info.params})
    if unknown:
        known = ", ".join(p.name for p in info.params) or "none"
        raise ParamError(f"unknown option(s) for method {info.name!r}: {', '.join(unknown)} (known: {known})")
    values = info.defaults()
    for name, value in raw.items():
        values[name] = info.param(name).parse(value)  # type: ignore[union-attr]
    return values


# The methods. Their modules (torch) live in worker/colorizers/nets and exemplar.py; the registry maps
# these names to loaders. Keep the text here user-facing: it is shown on the upload page and in /methods.
from worker.colorizers import entries as _entries  # noqa: E402,F401  (registers the methods)
