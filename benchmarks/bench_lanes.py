"""Two lanes: how long fast (cnn) jobs wait while an iterative (exemplar) job runs, before and after.

before: one `colorlab worker --lane all` (one pool process on both queues: the old single queue);
after:  `colorlab worker --lane fast` + `colorlab worker --lane iterative` (one pool process each).
Each run: PostgreSQL + Redis on loopback, an exemplar job is submitted and, once it runs, one cnn job per
`--interval` seconds for `--count` jobs; the wait of each cnn job is its started_at - created_at. The cnn
photo is grayed first (`--colour` keeps it: the worker then also computes quality metrics against it).

    python -m benchmarks.bench_lanes --redis redis://127.0.0.1:6379/9 [--count 20 --interval 1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time
from datetime import UTC, datetime

import httpx

from benchmarks.stack import ROOT, percentile, scratch_stack

PHOTO = ROOT.parent / "shared" / "data" / "imagenet-samples" / "001_n01443537_goldfish.jpg"
PAIR = ROOT.parent / "shared" / "data" / "exemplar-pairs" / "example"


def wait_for(http: httpx.Client, job_id: str, statuses: tuple[str, ...], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise RuntimeError(f"job {job_id} not {statuses} within {timeout} s")


def photo_bytes(colour: bool) -> bytes:
    if colour:
        return PHOTO.read_bytes()
    from PIL import Image

    buf = io.BytesIO()
    Image.open(PHOTO).convert("L").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def run(setup: str, redis_url: str, count: int, interval: float, iterations: int, colour: bool) -> dict:
    settings = {"TORCH_THREADS": "1", "SWEEP_INTERVAL": "5"}
    with scratch_stack(redis_url, **settings) as stack:
        stack.start("serve", "serve")
        if setup == "before":
            stack.start("worker", "worker", "--lane", "all")
        else:
            stack.start("fast", "worker", "--lane", "fast")
            stack.start("iterative", "worker", "--lane", "iterative")
        stack.wait_healthy()
        http = httpx.Client(base_url=stack.base, timeout=30)
        # Warm the workers (model loads) so the measurement is about queueing, not first loads.
        target, ref = next(PAIR.glob("in1.*")), next(PAIR.glob("ref1.*"))
        image = photo_bytes(colour)
        warm_cnn = http.post("/colorize", files={"image": image}, data={"method": "cnn"}).json()
        wait_for(http, warm_cnn["id"], ("done",), 300)
        files = {"image": target.read_bytes(), "reference": ref.read_bytes()}
        options = {"method": "exemplar", "iterations": "2", "size": "64"}
        warm_ex = http.post("/colorize", files=files, data=options).json()
        wait_for(http, warm_ex["id"], ("done",), 300)

        options = {"method": "exemplar", "iterations": str(iterations), "size": "128"}
        long_job = http.post("/colorize", files=files, data=options).json()["id"]
        wait_for(http, long_job, ("running",), 120)
        ids = []
        for _ in range(count):
            r = http.post("/colorize", files={"image": image}, data={"method": "cnn"})
            ids.append(r.json()["id"])
            time.sleep(interval)
        jobs = [wait_for(http, i, ("done", "failed"), 1800) for i in ids]
        exemplar = wait_for(http, long_job, ("done", "failed"), 1800)
        waits = [j["queue_seconds"] for j in jobs if j["status"] == "done"]
        return {
            "setup": setup,
            "fast_jobs": count,
            "photo": "colour (metrics computed)" if colour else "gray",
            "exemplar_iterations": iterations,
            "done": len(waits),
            "wait_p50_s": round(percentile(waits, 50), 2),
            "wait_p99_s": round(percentile(waits, 99), 2),
            "wait_max_s": round(max(waits), 2),
            "exemplar_run_s": exemplar["run_seconds"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9"))
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--colour", action="store_true", help="Submit the colour photo (metrics computed).")
    args = parser.parse_args()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    results = [
        run(s, args.redis, args.count, args.interval, args.iterations, args.colour)
        for s in ("before", "after")
    ]
    print(
        json.dumps(
            {
                "date": started,
                "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
                "load_avg_1min_at_start": load,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
