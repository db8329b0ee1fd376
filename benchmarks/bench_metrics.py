"""What a ``GET /metrics`` scrape costs (``backend/service_metrics.py``): ``collect`` + ``render`` on the
embedded SQLite default and on PostgreSQL, with 1,000, 10,000 and 50,000 jobs stored (finished over the last
two hours: about 45 % of them in the scrape's one-hour window; 10 % still queued), median of 7 scrapes.

    .venv/bin/python benchmarks/bench_metrics.py [--postgres postgresql+psycopg://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1_000, 10_000, 50_000)
METHODS = ("cnn", "unet-bins", "exemplar", "gan")


def measure(database_url: str) -> list[float]:
    """In this process: fill a migrated database in steps and time a scrape at each size (seconds)."""
    from backend.config import get_settings
    from backend.db import session_scope
    from backend.models import Job, JobStatus, utcnow
    from backend.service_metrics import collect, render
    from tests.backend.test_runner import new_job
    from tests.conftest import migrate, reset_caches

    os.environ["DATA_DIR"] = tempfile.mkdtemp()
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    reset_caches()
    migrate()
    with session_scope() as s:
        image = s.get(Job, new_job("cnn")).input_image_id  # type: ignore[union-attr]
    rng, now, stored, times = random.Random(0), utcnow(), 1, []
    for size in SIZES:
        with session_scope() as s:
            for _ in range(size - stored):
                finished = now - timedelta(seconds=rng.uniform(0, 7200))
                status = rng.choice([JobStatus.done] * 8 + [JobStatus.failed, JobStatus.queued])
                ended = status != JobStatus.queued
                seconds = rng.uniform(0.1, 3.0) if status == JobStatus.done else None
                s.add(Job(method=rng.choice(METHODS), params={}, status=status, input_image_id=image,
                          created_at=finished - timedelta(seconds=40),
                          started_at=finished - timedelta(seconds=5) if ended else None,
                          finished_at=finished if ended else None, run_seconds=seconds))  # fmt: skip
        stored = size
        scrapes = []
        for _ in range(7):
            with session_scope() as s:
                start = time.perf_counter()
                render(collect(s, get_settings()))
                scrapes.append(time.perf_counter() - start)
        times.append(statistics.median(scrapes))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres", default="", help="a server URL (without a database): also measure there"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:  # one database per process: the settings and engines are per process
        print(",".join(f"{t:.6f}" for t in measure(args.child)))
        return
    runs = [("SQLite (embedded default)", "")]
    name = f"colorlab_bench_metrics_{os.getpid()}"
    if args.postgres:
        import sqlalchemy as sa

        admin = sa.create_engine(f"{args.postgres}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE {name}"))
        runs.append(("PostgreSQL", f"{args.postgres}/{name}"))
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, median of 7 scrapes\n")
    print("| database | " + " | ".join(f"{n:,} jobs stored (ms)" for n in SIZES) + " |")
    print("|---|" + "---:|" * len(SIZES))
    try:
        for label, url in runs:
            out = subprocess.run([sys.executable, __file__, "--child", url], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
            print(f"| {label} | " + " | ".join(f"{1000 * float(t):.1f}" for t in out.split(",")) + " |")
    finally:
        if args.postgres:
            with admin.connect() as c:
                c.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
