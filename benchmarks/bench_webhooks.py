"""Webhooks (``backend/webhooks.py``): how soon a finished job's call arrives, what owing it costs the job,
and how fast one worker works off a backlog of calls.

Each run: `colorlab serve` + `colorlab worker --lane fast` on PostgreSQL + Redis (loopback), a receiver in
this process.

1. Latency and cost: ``--count`` cnn jobs, one every ``--interval`` s, alternately with and without a
   ``webhook``; per job with one, from its ``finished_at`` to the call's arrival; for both kinds, the job's
   upload-to-finish time (what a client waits for either way).
2. Backlog: ``--backlog`` calls owed at once (jobs submitted with a webhook while no worker runs, then
   cancelled), then a worker is started: the time from its "ready" to the last call's arrival, with a
   receiver that answers at once and one that takes ``--slow`` s per answer.

    python -m benchmarks.bench_webhooks --redis redis://127.0.0.1:6379/9 [--count 30 --backlog 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from benchmarks.stack import ROOT, percentile, scratch_stack

PHOTO = ROOT.parent / "shared" / "data" / "imagenet-samples" / "001_n01443537_goldfish.jpg"
SETTINGS = {"TORCH_THREADS": "1", "SWEEP_INTERVAL": "5", "COLORIZE_RATE": "100000", "PHOTO_BUDGET": "100000"}


class Receiver:
    """Records each call's arrival (wall clock) by job or batch id; answers after ``delay`` s."""

    def __init__(self, delay: float = 0.0) -> None:
        self.arrived: dict[str, float] = {}
        self.delay = delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                receiver.arrived.setdefault(json.loads(body)["data"]["id"], time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def submit(http: httpx.Client, webhook: str | None) -> str:
    data = {"method": "cnn", **({"webhook": webhook} if webhook else {})}
    r = http.post("/colorize", files={"image": ("goldfish.jpg", PHOTO.read_bytes(), "image/jpeg")}, data=data)
    r.raise_for_status()
    return str(r.json()["id"])


def finished(http: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.1)
    raise RuntimeError(f"job {job_id} did not finish within {timeout} s")


def stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def latency(redis_url: str, count: int, interval: float) -> dict:
    receiver = Receiver()
    try:
        with scratch_stack(redis_url, **SETTINGS) as stack:
            stack.start("serve", "serve")
            stack.start("worker", "worker", "--lane", "fast")
            stack.wait_healthy()
            http = httpx.Client(base_url=stack.base, timeout=30)
            finished(http, submit(http, None), timeout=180)  # the model loaded before anything is timed
            jobs: list[tuple[str, bool]] = []
            for i in range(count):
                with_hook = i % 2 == 0
                jobs.append((submit(http, receiver.url if with_hook else None), with_hook))
                time.sleep(interval)
            done = {job_id: finished(http, job_id) for job_id, _ in jobs}
            deadline = time.monotonic() + 60
            hooked = [j for j, w in jobs if w]
            while time.monotonic() < deadline and not all(j in receiver.arrived for j in hooked):
                time.sleep(0.1)
            delays = [
                receiver.arrived[j] - stamp(done[j]["finished_at"]) for j in hooked if j in receiver.arrived
            ]
            total = {
                kind: [
                    stamp(done[j]["finished_at"]) - stamp(done[j]["created_at"]) for j, w in jobs if w == kind
                ]
                for kind in (True, False)
            }
            return {
                "calls": f"{len(delays)} of {len(hooked)}",
                "call_after_finish_s": {q: percentile(delays, q) for q in (50, 95, 100)},
                "upload_to_finish_s": {
                    "with webhook": {q: percentile(total[True], q) for q in (50, 95)},
                    "without": {q: percentile(total[False], q) for q in (50, 95)},
                },
            }
    finally:
        receiver.close()


def backlog(redis_url: str, calls: int, delay: float) -> dict:
    receiver = Receiver(delay)
    try:
        with scratch_stack(redis_url, **SETTINGS) as stack:
            stack.start("serve", "serve")
            stack.wait_healthy()
            http = httpx.Client(base_url=stack.base, timeout=30)
            ids = [submit(http, receiver.url) for _ in range(calls)]
            for job_id in ids:
                http.post(f"/jobs/{job_id}/cancel").raise_for_status()  # cancelled: its call is owed
            worker = stack.start("worker", "worker", "--lane", "fast")
            started = time.time()
            deadline = time.monotonic() + 600
            while len(receiver.arrived) < calls and time.monotonic() < deadline and worker.poll() is None:
                time.sleep(0.05)
            took = max(receiver.arrived.values()) - started if receiver.arrived else float("nan")
            return {
                "calls": len(receiver.arrived),
                "answer_s": delay,
                "seconds": took,
                "calls_per_s": calls / took,
            }
    finally:
        receiver.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--backlog", type=int, default=300)
    parser.add_argument("--slow", type=float, default=0.2)
    args = parser.parse_args()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
        "latency": latency(args.redis, args.count, args.interval),
        "backlog": [backlog(args.redis, args.backlog, 0.0), backlog(args.redis, args.backlog, args.slow)],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
