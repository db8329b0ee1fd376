"""Many JPEG downloads of a large result at once: the web process's memory and the answers' times, now (the
re-encoding in the decode pool, DECODE_CONCURRENCY at a time) against a baseline checkout (in the request
thread pool, WEB_THREADS at a time), side by side.

Each code version runs in a process of its own (``--tree``: a checkout, e.g. a `git worktree` of the
baseline) on a scratch SQLite database: one ``cnn`` colorization of a photo scaled to ``--mp`` megapixels is
stored by the worker's own code, then ``--clients`` threads ask at once for ``GET /jobs/{id}/result.png?
format=jpg`` with different qualities (no two answers the same: nothing is cached), through the ASGI app
in-process (Starlette's TestClient, its real thread pools). Memory: the process's peak resident set above
what it held before the downloads (``VmHWM``, reset through ``/proc/self/clear_refs``).

    git worktree add /tmp/colorlab-base 89c69e9
    .venv/bin/python benchmarks/bench_jpeg_downloads.py --baseline /tmp/colorlab-base [--mp 24] [--clients 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT.parent / "shared" / "data" / "imagenet-samples" / "001_n01443537_goldfish.jpg"


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def measure(megapixels: float, clients: int) -> dict[str, float]:
    """Run in the code version under test (its checkout first on sys.path)."""
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from backend import migrate
    from backend.config import get_settings
    from backend.main import create_app
    from worker.runner import Runner

    migrate.upgrade()
    photo = Image.open(PHOTO).convert("L")
    scale = (megapixels * 1e6 / (photo.width * photo.height)) ** 0.5
    big = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=95)
    with TestClient(create_app()) as client:
        r = client.post(
            "/colorize", files={"image": ("big.jpg", buf.getvalue(), "image/jpeg")}, data={"method": "cnn"}
        )
        job_id = r.json()["id"]
        assert Runner(get_settings()).run(job_id) == "done"
        client.get(f"/jobs/{job_id}/result.png?format=jpg&quality=40")  # warm: first call's imports
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _status("VmRSS")
        times: list[float] = []

        def download(quality: int) -> None:
            started = time.perf_counter()
            answer = client.get(f"/jobs/{job_id}/result.png?format=jpg&quality={quality}")
            assert answer.status_code == 200 and answer.content[:2] == b"\xff\xd8"
            times.append(time.perf_counter() - started)

        started = time.perf_counter()
        threads = [threading.Thread(target=download, args=(50 + i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    times.sort()
    return {
        "peak_above_mb": _status("VmHWM") - before,
        "wall_s": wall,
        "first_s": times[0],
        "median_s": times[len(times) // 2],
        "last_s": times[-1],
    }


def run_tree(tree: Path, megapixels: float, clients: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "PYTHONPATH": str(tree),
            "DATA_DIR": data_dir,
            "DATABASE_URL": "",
            "WEIGHTS_DIR": str(ROOT / "var" / "weights"),
            "MAX_PIXELS": str(int(megapixels * 1e6 * 2)),
        }
        out = subprocess.run(
            [sys.executable, __file__, "--measure", "--mp", str(megapixels), "--clients", str(clients)],
            env=env,
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, help="a checkout of the baseline (git worktree)")
    parser.add_argument("--mp", type=float, default=24.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.mp, args.clients)))
        return
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; {args.clients} downloads at once")
    rows = {"now": run_tree(ROOT, args.mp, args.clients)}
    if args.baseline:
        rows["baseline"] = run_tree(args.baseline.resolve(), args.mp, args.clients)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
