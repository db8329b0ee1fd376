"""User colour hints (torch-free parsing; rasterising lives with the net that reads them).

A hint says "this point of the photo has this colour": ``{"x": 0-1, "y": 0-1, "color": "#rrggbb"}``, with x
and y relative to the photo's width and height (0, 0 = top left). Only the colour's chrominance (Lab a, b)
is used; the photo keeps its own lightness. Hints arrive as a JSON list (a form field or inside
``options``) and are normalised here to a tuple of dicts with floats and a lower-case colour.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

MAX_HINTS = 64
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_EXAMPLE = '[{"x": 0.5, "y": 0.2, "color": "#3a7bd5"}]'


class HintError(ValueError):
    """Hints that cannot be used; the message says which one and why."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys each come once (json.loads would keep the last of two: which was meant?)."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys):
        twice = sorted({key for key in keys if keys.count(key) > 1})
        raise HintError(f"hints: {', '.join(map(json.dumps, twice))} given twice in one hint: give each once")
    return dict(pairs)


def parse_hints(raw: Any) -> list[dict[str, Any]]:
    """A JSON string or an already-decoded list -> ``[{"x", "y", "color"}, ...]`` (checked)."""
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return []
        if len(text) > 16 * 1024:
            raise HintError("hints: too long (at most 16 KiB of JSON)")
        try:
            raw = json.loads(text, object_pairs_hook=_unique_keys)
        except HintError:  # a ValueError too, but with its own words
            raise
        except json.JSONDecodeError as exc:
            raise HintError(f"hints must be a JSON list like {_EXAMPLE}: {exc.msg}") from None
        except (RecursionError, ValueError):  # absurd nesting or a number of thousands of digits
            raise HintError(f"hints must be a JSON list like {_EXAMPLE}") from None
    if not isinstance(raw, list | tuple):
        raise HintError(f"hints must be a JSON list like {_EXAMPLE}")
    if len(raw) > MAX_HINTS:
        raise HintError(f"at most {MAX_HINTS} hints; got {len(raw)}")
    hints = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"x", "y", "color"}:
            raise HintError(f'hint {i}: must be an object with exactly "x", "y" and "color", e.g. {_EXAMPLE}')
        point = {}
        for key in ("x", "y"):
            value = item[key]
            # compared as it is: a float() of an integer of hundreds of digits overflows
            finite = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
            if isinstance(value, bool) or not finite:
                raise HintError(f"hint {i}: {key} must be a number from 0 to 1, got {value!r:.40}")
            if not 0 <= value <= 1:
                shown = f"{value!r:.40}"
                raise HintError(f"hint {i}: {key} must be from 0 to 1 (relative to the photo), got {shown}")
            point[key] = float(value)
        color = item["color"]
        if not isinstance(color, str) or not _COLOR.match(color):
            raise HintError(f'hint {i}: color must be "#rrggbb", got {color!r}')
        hints.append({"x": point["x"], "y": point["y"], "color": color.lower()})
    return hints


def hint_rgb(hint: dict[str, Any]) -> np.ndarray:
    """The hint's colour as RGB uint8 (3,)."""
    value = hint["color"].lstrip("#")
    return np.array([int(value[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.uint8)


def hint_ab(hint: dict[str, Any]) -> tuple[float, float]:
    """The hint colour's Lab chrominance (a, b)."""
    from worker.colorizers.lab import rgb_to_lab

    lab = rgb_to_lab(hint_rgb(hint)[None])[0]
    return float(lab[1]), float(lab[2])
