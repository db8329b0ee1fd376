"""Enqueue latency of `POST /colorize` under concurrent uploads (PostgreSQL + Redis, real server on loopback).

Starts `colorlab serve` on a fresh PostgreSQL database and a Redis database of its own (no worker: this
measures accepting, validating, storing and queueing an upload, not colorizing it), then runs N concurrent
clients. Two runs:
- paced: each client submits one upload every `--interval` seconds (an arrival rate the server can sustain),
  so the latency is the service time an uploader sees;
- saturated: each client submits back to back, which gives the throughput ceiling (latency there is
  mostly queueing: concurrency / throughput).
Reports p50/p90/p99/max latency, throughput and errors. Target (issue 2): p99 < 50 ms at 32 clients, 0 errors.

    .venv/bin/python benchmarks/bench_api.py --clients 32 --requests 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import time
from pathlib import Path

import httpx
from stack import percentile, scratch_stack

ROOT = Path(__file__).resolve().parent.parent
PHOTO = next((ROOT.parent / "shared" / "data" / "imagenet-samples").glob("001_*.jpg"))


async def client_loop(
    http: httpx.AsyncClient, n: int, interval: float, data: bytes, latencies: list[float], errors: list[str]
) -> None:
    await asyncio.sleep(secrets.randbelow(1000) / 1000 * interval)  # spread the clients' phases
    for _ in range(n):
        started = time.perf_counter()
        try:
            r = await http.post(
                "/colorize", files={"image": ("p.jpg", data, "image/jpeg")}, data={"method": "cnn"}
            )
            if r.status_code != 202:
                errors.append(f"{r.status_code}: {r.text[:100]}")
        except httpx.HTTPError as exc:
            errors.append(repr(exc))
        elapsed = time.perf_counter() - started
        latencies.append(elapsed * 1000)
        if interval:
            await asyncio.sleep(max(0.0, interval - elapsed))


async def run_load(base: str, clients: int, requests: int, interval: float) -> dict[str, float]:
    data = PHOTO.read_bytes()
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(
            *(client_loop(http, requests, interval, data, latencies, errors) for _ in range(clients))
        )
        wall = time.perf_counter() - started
    if errors:
        print("errors:", errors[:5])
    return {
        "n": len(latencies),
        "errors": len(errors),
        "p50": percentile(latencies, 50),
        "p90": percentile(latencies, 90),
        "p99": percentile(latencies, 99),
        "max": max(latencies),
        "mean": statistics.fmean(latencies),
        "throughput": len(latencies) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20, help="uploads per client in each run")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between a paced client's uploads"
    )
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()

    import redis

    with scratch_stack(args.redis, COLORIZE_RATE="1000000", PHOTO_BUDGET="1000000") as stack:
        stack.start("web", "serve", "--workers", str(args.web_workers))
        stack.wait_healthy()
        asyncio.run(run_load(stack.base, 4, 5, 0.0))  # warm-up: connections, imports, caches
        paced = asyncio.run(run_load(stack.base, args.clients, args.requests, args.interval))
        saturated = asyncio.run(run_load(stack.base, args.clients, args.requests, 0.0))
        queued = redis.Redis.from_url(args.redis).llen("fast")
    print(
        f"machine: {platform.node()} {os.cpu_count()} cores, {platform.python_version()}; "
        f"{args.web_workers} web workers; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(f"messages in the Redis queue afterwards: {queued}")
    header = (
        f"{'run':<10}{'clients':>8}{'uploads':>9}{'errors':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'req/s':>8}"
    )
    print(header)
    for name, r in (("paced", paced), ("saturated", saturated)):
        print(
            f"{name:<10}{args.clients:>8}{r['n']:>9}{r['errors']:>8}{r['p50']:>9.1f}{r['p90']:>9.1f}"
            f"{r['p99']:>9.1f}{r['max']:>9.1f}{r['throughput']:>8.1f}"
        )


if __name__ == "__main__":
    main()
