"""Walking a folder of photos without leaving any out unsaid (torch-free: the command line's inputs too)."""

from __future__ import annotations

import os
from pathlib import Path


class UnreadableFolder(OSError):
    """A folder among the data that cannot be listed: its photos would be left out unsaid."""


def files_under(folder: Path) -> tuple[list[Path], list[str]]:
    """Every file under ``folder`` (symbolic links to folders followed, each real folder once), sorted, and
    the folders that could not be listed, each as "PATH: REASON" (Path.rglob leaves them out unsaid)."""
    unreadable: list[str] = []
    found: list[Path] = []
    seen: set[str] = set()

    def note(error: OSError) -> None:
        unreadable.append(f"{error.filename}: {error.strerror or error}")

    for top, folders, names in os.walk(folder, onerror=note, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a link back up the tree: walked once
            folders[:] = []
            continue
        seen.add(real)
        found += [Path(top) / name for name in names if (Path(top) / name).is_file()]
    return sorted(found), unreadable
