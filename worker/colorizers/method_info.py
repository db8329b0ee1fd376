"""What a colorization method is, torch-free: its user-facing description and options, its weight files
and how to load it. The methods themselves are listed in :mod:`worker.colorizers.methods`.

:func:`validate_params` turns raw form/JSON values into typed, range-checked options or raises
:class:`ParamError` with a message for the user. Whether a method can run here depends only on whether its
weight files are present: :meth:`MethodInfo.unavailable_reason` is the one place that decides it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from worker.colorizers.manifest import WeightFile, damaged_reason, missing_reason

if TYPE_CHECKING:
    from worker.colorizers.base import Colorizer

ParamType = Literal["int", "float", "choice", "bool", "hints"]


class ParamError(ValueError):
    """A user-supplied option is unknown, of the wrong type or out of range."""


class Unavailable(RuntimeError):
    """The method cannot run here (unknown name or missing weights); the message says how to fix it."""


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
            raise ParamError(f"option {self.name!r} must be true or false, got {as_json(raw)}")
        if self.type == "choice":
            text = str(raw).strip()
            if text not in self.choices:
                choices = ", ".join(self.choices)
                raise ParamError(f"option {self.name!r} must be one of {choices}; got {as_json(raw)}")
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
            raise ParamError(f"option {self.name!r} must be {kind}, got {as_json(raw)}") from None
        if self.minimum is not None and value < self.minimum:
            raise ParamError(f"option {self.name!r} must be ≥ {self.minimum:g}, got {value:g}")
        if self.maximum is not None and value > self.maximum:
            raise ParamError(f"option {self.name!r} must be ≤ {self.maximum:g}, got {value:g}")
        return value


def as_json(value: object) -> str:
    """A value as the JSON (or form field) it came from reads: true, null, "abc", [1, 2] — never Python's
    True or None."""
    try:
        return json.dumps(value, ensure_ascii=False)[:80]
    except (TypeError, ValueError):
        return repr(value)[:80]


@dataclass(frozen=True)
class Preset:
    """A named set of options offered to people instead of the raw knobs (e.g. Quick · Balanced · Paper)."""

    name: str
    label: str
    summary: str  # one line, plain words
    options: Mapping[str, Any]
    default: bool = False  # the choice made for people (one per method; none marked: the first)


@dataclass(frozen=True)
class LoadContext:
    """Where a method's ``load`` finds its weight files and which torch device it runs on."""

    weights_dir: Path
    device: str  # "cpu", "cuda", "cuda:0", ...
    bf16: bool = True  # bfloat16 autocast where the CPU has it natively (feed-forward nets)
    # Weight file name -> a file of one's own in its place (an evaluation of weights just trained): loaded
    # as it is, its arch checked by the loader, not its sha256
    overrides: Mapping[str, Path] = field(default_factory=dict)

    def path(self, weight: WeightFile) -> Path:
        """The weight file's path, its sha256 checked; :class:`Unavailable` naming the fix when it is missing
        or damaged."""
        if weight.name in self.overrides:
            return self.overrides[weight.name]
        path = weight.path(self.weights_dir)
        if not path.is_file():
            raise Unavailable(f"weights {weight.name!r} missing: run `{weight.fetch_command}`")
        if reason := damaged_reason(weight, self.weights_dir):
            raise Unavailable(reason)
        return path


Loader = Callable[[LoadContext], "Colorizer"]


@dataclass(frozen=True)
class MethodInfo:
    name: str
    title: str
    description: str  # what it is, for the details disclosure and GET /methods
    load: Loader  # builds the colorizer from verified weights; imports torch only when called
    params: tuple[Param, ...] = ()
    needs_reference: bool = False
    weights: tuple[WeightFile, ...] = ()  # the files it runs on
    weights_any: bool = False  # True: any one of ``weights`` suffices (alternatives, preferred first)
    # Methods whose weights this one also runs on when they are there (exemplar's matched start is
    # unet-bins-reference's colours): other files there give other results.
    builds_on: tuple[str, ...] = ()
    training_weights: tuple[WeightFile, ...] = ()  # files only its training needs (fetched, not served)
    iterative: bool = False  # reports step-by-step progress with previews
    batchable: bool = False  # feed-forward: the worker may batch several queued jobs
    paper: str = ""
    summary: str = ""  # one line in plain words: what a person gets (the upload page's method card)
    presets: tuple[Preset, ...] = ()  # in the order shown, quickest first
    # Iterations an iterative method runs for given options (for time estimates); None: not iterative.
    planned_iterations: Callable[[Mapping[str, Any]], int] | None = None
    default: bool = False  # the method used when a request names none (exactly one method)

    def iterations_for(self, params: Mapping[str, Any]) -> int | None:
        return int(self.planned_iterations(params)) if self.planned_iterations is not None else None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def unavailable_reason(
        self, weights_dir: Path, *, verify: bool = False, overrides: Mapping[str, Path] | None = None
    ) -> str | None:
        """None when the method can run with ``weights_dir``; otherwise why not and how to fix it. With
        ``verify`` each present file's sha256 is checked too (else only sizes, cheap enough for any page).
        ``overrides``: weight files given in place of these (see :class:`LoadContext`)."""
        reason_for = damaged_reason if verify else missing_reason
        given = overrides or {}
        reasons = [r for w in self.weights if w.name not in given and (r := reason_for(w, weights_dir))]
        if self.weights_any and len(reasons) < len(self.weights):
            return None
        if self.weights_any and reasons:
            return "needs one of: " + "; or ".join(reasons)
        return "; ".join(reasons) or None

    def require_available(self, weights_dir: Path, overrides: Mapping[str, Path] | None = None) -> None:
        """:class:`Unavailable` with the reason unless the method can run with ``weights_dir``."""
        reason = self.unavailable_reason(weights_dir, overrides=overrides)
        if reason:
            raise Unavailable(f"method {self.name!r} is unavailable: {reason}")


def validate_params(
    info: MethodInfo, raw: Mapping[str, Any], others: Sequence[MethodInfo] = ()
) -> dict[str, Any]:
    """Typed options for ``info`` from raw values; unknown names and bad values raise ParamError. An unknown
    option that one of ``others`` takes is named with it (``follow_reference`` without a reference: the
    method that takes it colours from one)."""
    params = {p.name: p for p in info.params}
    unknown = sorted(set(raw) - set(params))
    if unknown:
        known = ", ".join(params) or "none"
        message = f"unknown option(s) for method {info.name!r}: {', '.join(unknown)} (known: {known})"
        for name in unknown:
            owners = [m for m in others if m is not info and m.param(name) is not None]
            if owners:
                needs = " (it colours from a reference image: add one)" if owners[0].needs_reference else ""
                message += f"; {name} is an option of {owners[0].name!r}{needs}"
        raise ParamError(message)
    return {**info.defaults(), **{name: params[name].parse(value) for name, value in raw.items()}}
