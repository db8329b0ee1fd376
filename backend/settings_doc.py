"""The README's settings table, generated from the one Settings object: `python -m backend.settings_doc`."""

from __future__ import annotations

from typing import Any

from annotated_types import Ge, Gt, Le, Lt

from backend.config import Settings

_BOUND_WORDS = (
    (Ge, "ge", "at least"),
    (Gt, "gt", "more than"),
    (Le, "le", "at most"),
    (Lt, "lt", "less than"),
)


def bounds(metadata: list[Any]) -> str:
    """A field's numeric limits in words ("at least 1, at most 256"): a value outside them stops every
    command with a configuration error."""
    words = []
    for kind, attribute, word in _BOUND_WORDS:
        for item in metadata:
            if isinstance(item, kind):
                words.append(f"{word} {getattr(item, attribute):g}")
    return ", ".join(words)


def table() -> str:
    rows = ["| Setting (env var) | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if hasattr(default, "get_secret_value"):
            default = default.get_secret_value()
        shown = "*(empty)*" if default in ("", None) else f"`{default}`"
        limits = bounds(field.metadata)
        meaning = (field.description or "") + (f" Allowed: {limits}." if limits else "")
        rows.append(f"| `{name.upper()}` | {shown} | {meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
