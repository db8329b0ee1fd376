"""`colorlab` with tracemalloc on, for finding what grows in a long run (bench_soak.py --tracemalloc).

    python benchmarks/traced_cli.py serve ...   # then: kill -USR2 <pid> writes a snapshot

Each SIGUSR2 dumps a tracemalloc snapshot to ``$TRACEMALLOC_DIR/<pid>-<n>.snap``; compare two with
``tracemalloc.Snapshot.load(a).compare_to(Snapshot.load(b), "lineno")``. Benchmark-only: the product never
traces its allocations.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_count = itertools.count()


def _dump(_signum: int, _frame: FrameType | None) -> None:
    folder = Path(os.environ.get("TRACEMALLOC_DIR", "."))
    tracemalloc.take_snapshot().dump(str(folder / f"{os.getpid()}-{next(_count)}.snap"))


if __name__ == "__main__":
    tracemalloc.start(8)
    signal.signal(signal.SIGUSR2, _dump)
    from backend.cli import main

    sys.argv = ["colorlab", *sys.argv[1:]]
    main()
