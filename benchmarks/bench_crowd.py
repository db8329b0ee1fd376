"""Crowd and decode cost (issue 14): many concurrent clients against one `colorlab serve` process, on the
embedded SQLite default and on PostgreSQL, and what decoding each red-team upload costs.

Crowd: N clients at once, each polling `GET /jobs/{id}` R times (no worker: the job stays queued, as while
a photo waits), then N mixed page/image requests (job page, history, thumbnail, input.png, /healthz).
Reports p50/p99 latency, 5xx and client errors (time-outs, resets) and the wall time of each wave.

Decode cost: each red-team file decoded in a fresh subprocess, as the web process did before (decode only,
old format list, no cost limits) and does now (limits, then renditions); CPU seconds and peak RSS.

    .venv/bin/python benchmarks/bench_crowd.py                       # crowd sweep + decode table
    .venv/bin/python benchmarks/bench_crowd.py --root /tmp/before    # the crowd sweep on another checkout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from stack import percentile, scratch_stack  # noqa: E402

PHOTO = sorted((ROOT.parent / "shared" / "data" / "imagenet-samples").glob("*.jpg"))[0]


async def wave(base: str, paths: list[str], timeout: float) -> dict[str, float]:
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=len(paths))
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as http:

        async def one(path: str) -> None:
            t0 = time.perf_counter()
            try:
                r = await http.get(path)
                codes[r.status_code] += 1
            except httpx.HTTPError:
                codes[-1] += 1
            latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(one(p) for p in paths))
        wall = time.perf_counter() - started
    return {
        "requests": len(paths),
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "5xx": sum(n for c, n in codes.items() if c >= 500),
        "client errors": codes[-1],
        "wall s": wall,
    }


async def crowd(base: str, clients: int, rounds: int, job: str, timeout: float) -> tuple[dict, dict]:  # type: ignore[type-arg]
    async def poller_rounds() -> dict[str, float]:
        results = [await wave(base, [f"/jobs/{job}"] * clients, timeout) for _ in range(rounds)]
        merged = dict(results[0])
        merged["requests"] = sum(r["requests"] for r in results)
        for key in ("5xx", "client errors", "wall s"):
            merged[key] = sum(r[key] for r in results)
        merged["p50"] = sorted(r["p50"] for r in results)[len(results) // 2]
        merged["p99"] = max(r["p99"] for r in results)
        return merged

    polls = await poller_rounds()
    pages = [
        f"/jobs/{job}/view",
        "/history",
        f"/jobs/{job}/thumb.jpg?of=input",
        f"/jobs/{job}/input.png",
        "/healthz",
    ]
    mixed = await wave(base, [pages[i % len(pages)] for i in range(clients)], timeout)
    return polls, mixed


def serve(env: dict[str, str], root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve"],
        env={**env, "PYTHONPATH": str(root)},
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_up(base: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{base} did not come up")


def run_backend(
    name: str, env: dict[str, str], base: str, root: Path, args: argparse.Namespace
) -> list[tuple]:  # type: ignore[type-arg]
    subprocess.run(
        [sys.executable, "-m", "backend.cli", "migrate"],
        env={**env, "PYTHONPATH": str(root)},
        cwd=root,
        check=False,  # scratch_stack has migrated PostgreSQL with this checkout (maybe newer than --root)
        capture_output=True,
    )
    proc = serve(env, root)
    rows = []
    try:
        wait_up(base)
        r = httpx.post(
            f"{base}/colorize",
            files={"image": (PHOTO.name, PHOTO.read_bytes(), "image/jpeg")},
            data={"method": "cnn"},
            timeout=60,
        )
        r.raise_for_status()
        job = r.json()["id"]
        for clients in args.clients:
            polls, mixed = asyncio.run(crowd(base, clients, args.rounds, job, args.timeout))
            rows.append((name, clients, "poll", polls))
            rows.append((name, clients, "pages+images", mixed))
            print(name, clients, polls, mixed, flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # the old server could stay wedged after a crowd
            proc.kill()
            proc.wait()
    return rows


DECODE_SNIPPET = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from tests.reliability.redteam import BOMBS, phone_photo
from backend import errors, images
name, mode = sys.argv[2], sys.argv[3]
data = phone_photo(6000, 4000) if name == "phone-24mp" else BOMBS[name][0]()
def hwm_kb():
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    return int(status.split()[0])
import gc; gc.collect()
open("/proc/self/clear_refs", "w").write("5")  # peak RSS from here on (making the file cost memory too)
peak0 = hwm_kb()
t0 = time.process_time()
try:
    if mode == "before":
        images.ALLOWED_FORMATS = (*images.ALLOWED_FORMATS, "PPM", "JPEG2000", "AVIF")
        images.decode(data, max_pixels=40_000_000)
    else:
        d = images.decode(data, max_pixels=40_000_000, max_pixels_per_byte=60, max_jpeg_scans=32)
        images.renditions(d)
    outcome = "decoded"
except errors.UserError as exc:
    outcome = f"{exc.status_code}"
cpu = time.process_time() - t0
peak = hwm_kb()
grew = max(0, peak - peak0) / 1024
print(json.dumps({"bytes": len(data), "cpu": cpu, "peak_mb": grew, "outcome": outcome}))
"""


def decode_table() -> list[dict]:  # type: ignore[type-arg]
    from tests.reliability.redteam import BOMBS

    rows = []
    for name in [*BOMBS, "phone-24mp"]:
        row: dict = {"file": name}  # type: ignore[type-arg]
        for mode in ("before", "after"):
            out = subprocess.run(
                [sys.executable, "-c", DECODE_SNIPPET, str(ROOT), name, mode],
                capture_output=True,
                text=True,
                timeout=600,
                cwd=ROOT,
            )
            row[mode] = (
                json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else out.stderr[-200:]
            )
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 100, 200, 500])
    parser.add_argument("--rounds", type=int, default=2, help="poll waves per concurrency level")
    parser.add_argument("--timeout", type=float, default=60, help="client time-out per request (s)")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose server is measured")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--no-decode", action="store_true", help="skip the decode-cost table")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    weights = os.environ.get("WEIGHTS_DIR", str(ROOT / "var" / "weights"))
    rows = []
    if "sqlite" in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            port = 18000 + os.getpid() % 2000
            env = {**os.environ, "DATA_DIR": tmp, "PORT": str(port), "WEIGHTS_DIR": weights}
            env.pop("DATABASE_URL", None)
            rows += run_backend("sqlite", env, f"http://127.0.0.1:{port}", args.root, args)
    if "postgres" in args.backends:
        with scratch_stack(args.redis) as stack:
            rows += run_backend("postgres", stack.env, stack.base, args.root, args)
    print(
        f"\nmachine: {platform.node()}, {os.cpu_count()} cores; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; server: {args.root}"
    )
    print("| backend | clients | requests | kind | p50 ms | p99 ms | 5xx | client errors | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for backend, clients, kind, r in rows:
        print(
            f"| {backend} | {clients} | {r['requests']} | {kind} | {r['p50']:.0f} | {r['p99']:.0f} | "
            f"{r['5xx']} | {r['client errors']} | {r['wall s']:.1f} |"
        )
    if not args.no_decode:
        print("\n| file | bytes | before: outcome | CPU s | peak MB | after: outcome | CPU s | peak MB |")
        print("|---|---|---|---|---|---|---|---|")
        for row in decode_table():
            b, a = row["before"], row["after"]
            if isinstance(b, dict) and isinstance(a, dict):
                print(
                    f"| {row['file']} | {b['bytes']:,} | {b['outcome']} | {b['cpu']:.2f} | "
                    f"{b['peak_mb']:.0f} | {a['outcome']} | {a['cpu']:.2f} | {a['peak_mb']:.0f} |"
                )
            else:
                print(f"| {row['file']} | failed: {b!r:.80} / {a!r:.80} |")


if __name__ == "__main__":
    main()
