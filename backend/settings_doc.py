"""The README's settings table, generated from the one Settings object: `python -m backend.settings_doc`."""

from __future__ import annotations

from backend.config import Settings


def table() -> str:
    rows = ["| Setting (env var) | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if hasattr(default, "get_secret_value"):
            default = default.get_secret_value()
        shown = "*(empty)*" if default in ("", None) else f"`{default}`"
        rows.append(f"| `{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
