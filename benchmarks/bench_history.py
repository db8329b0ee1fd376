"""The history page of a browser with many batches (issue: History grouped by batch), on the embedded SQLite
default and on PostgreSQL, against another checkout side by side (the ungrouped history before).

One browser's history, the rows written straight into a fresh database (one stored photo shared by all):
"mixed", 20 rounds of (a batch of 200 photos, a comparison of 5 methods, 15 single jobs); "batches", 60
batches of 200 photos (page 1 is 60 batches: the grouped page's worst case). Times `GET /history` (page 1)
in-process (TestClient; templates rendered, no network), median of REPEATS, and counts its cards.

    .venv/bin/python benchmarks/bench_history.py                      # this checkout
    .venv/bin/python benchmarks/bench_history.py --root /tmp/before   # another (e.g. a git worktree)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BATCH_SIZE, REPEATS = 200, 20
SCENARIOS = {"mixed": (20, 1, 15), "batches": (60, 0, 0)}  # rounds; comparisons and single jobs per round


def measure(scenario: str) -> dict[str, object]:
    """In the child process (this checkout's code first on sys.path): fill a history, time the page."""
    from fastapi.testclient import TestClient
    from PIL import Image as PILImage
    from sqlalchemy import select

    from backend import migrate
    from backend.db import session_scope
    from backend.main import create_app
    from backend.models import Batch, Job, new_id

    migrate.upgrade()
    with TestClient(create_app()) as web:
        import io

        buf = io.BytesIO()
        PILImage.new("L", (64, 48), 90).save(buf, format="PNG")
        first = web.post(
            "/colorize", files={"image": ("p.png", buf.getvalue(), "image/png")}, data={"method": "cnn"}
        )
        assert first.status_code == 202, first.text
        with session_scope() as s:
            seed = s.get(Job, first.json()["id"])
            assert seed is not None
            client, image_id, start = seed.client, seed.input_image_id, seed.created_at
            n = 0

            def job(**extra: object) -> Job:
                nonlocal n
                n += 1
                return Job(
                    method="cnn",
                    params={},
                    status="done",
                    progress=1.0,
                    attempts=1,
                    input_image_id=image_id,
                    client=client,
                    source_name=f"p{n}.jpg",
                    created_at=start + timedelta(seconds=n),
                    **extra,
                )

            rounds, comparisons, singles = SCENARIOS[scenario]
            for _ in range(rounds):
                batch = Batch(method="cnn", params={}, client=client, rejected=[])
                s.add(batch)
                s.flush()
                s.add_all([job(batch_id=batch.id) for _ in range(BATCH_SIZE)])
                for _ in range(comparisons):
                    group = new_id()
                    s.add_all([job(group_id=group) for _ in range(5)])
                s.add_all([job() for _ in range(singles)])
            s.commit()
            jobs = len(s.scalars(select(Job.id).where(Job.client == client)).all())
        web.get("/history")  # warm the templates
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            page = web.get("/history", headers={"Accept": "text/html"})
            times.append(time.perf_counter() - t0)
            assert page.status_code == 200
        return {
            "jobs": jobs,
            "cards": page.text.count("data-kind=") or page.text.count('class="job-card"'),
            "ms_median": round(statistics.median(times) * 1000, 1),
            "kb": round(len(page.content) / 1024),
        }


def run(root: Path, database: str, scenario: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    with tempfile.TemporaryDirectory() as tmp:
        env["DATA_DIR"] = tmp
        name = None
        if database == "postgres":
            import sqlalchemy as sa

            name = f"colorlab_bench_{secrets.token_hex(4)}"
            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            env["DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--child", scenario],
                env=env,
                cwd=root,
                capture_output=True,
                text=True,
            )
            if out.returncode != 0:
                raise SystemExit(out.stderr[-3000:])
            return json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            if name:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose code runs")
    parser.add_argument("--child", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{when}, {platform.machine()} {platform.processor()}, {os.cpu_count()} cores, code of {args.root}")
    for scenario in SCENARIOS:
        for database in ("sqlite", "postgres"):
            print(scenario, database, json.dumps(run(args.root.resolve(), database, scenario)))


if __name__ == "__main__":
    main()
