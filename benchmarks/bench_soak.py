"""Soak: minutes of steady mixed load against a real stack (PostgreSQL + Redis, `colorlab serve` and
`colorlab worker` on loopback), reporting errors, latency percentiles and the RSS of the web and worker
processes over time (issue 7 §4).

Load, at a steady rate: uploads of real photos (`cnn`, colorized by the worker), status polls of recent jobs,
result downloads, and study participants arriving and answering (part 1 and part 2) with think times.

    .venv/bin/python benchmarks/bench_soak.py                 # 10 minutes
    .venv/bin/python benchmarks/bench_soak.py --minutes 1     # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import sqlalchemy as sa
from stack import percentile, rss_mb, scratch_stack

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
PHOTOS = sorted((ROOT.parent / "shared" / "data" / "imagenet-samples").glob("*.jpg"))


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    async def call(self, http: httpx.AsyncClient, kind: str, method: str, path: str, ok=(200,), **kw):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            r = await http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self.errors[kind].append(repr(exc))
            return None
        self.latency[kind].append((time.perf_counter() - t0) * 1000)
        if r.status_code not in ok:
            self.errors[kind].append(f"{r.status_code} {r.text[:120]}")
            return None
        return r


async def uploads(
    http: httpx.AsyncClient, stats: Stats, until: float, rate: float, recent: list[str]
) -> None:
    rng = random.Random(1)
    while time.monotonic() < until:
        photo = rng.choice(PHOTOS[:50])
        r = await stats.call(
            http,
            "upload",
            "POST",
            "/colorize",
            ok=(202,),
            files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
            data={"method": "cnn"},
        )
        if r is not None:
            recent.append(r.json()["id"])
            del recent[:-50]
        await asyncio.sleep(1 / rate)


async def polls(http: httpx.AsyncClient, stats: Stats, until: float, rate: float, recent: list[str]) -> None:
    rng = random.Random(2)
    while time.monotonic() < until:
        if recent:
            job_id = rng.choice(recent)
            r = await stats.call(http, "poll", "GET", f"/jobs/{job_id}")
            if r is not None and r.json()["status"] == "done" and rng.random() < 0.2:
                await stats.call(http, "result", "GET", f"/jobs/{job_id}/result.png")
        await asyncio.sleep(1 / rate)


async def crowd_pollers(base: str, stats: Stats, until: float, count: int, recent: list[str]) -> None:
    """``count`` clients polling at once, each as a browser tab does (once a second), on its own
    connection (issue 14: a crowd must queue, not fail)."""
    if count <= 0:
        return
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def one(index: int) -> None:
            rng = random.Random(100 + index)
            while time.monotonic() < until:
                if recent:
                    await stats.call(http, "crowd poll", "GET", f"/jobs/{rng.choice(recent)}")
                await asyncio.sleep(1.0)

        await asyncio.gather(*(one(i) for i in range(count)))


async def participants(base: str, slug: str, stats: Stats, until: float, every: float) -> None:
    from bench_study_load import participant

    rng = random.Random(3)
    tasks = []
    index = 0
    while time.monotonic() < until:
        answer_ms: list[float] = []
        other_ms: list[float] = []
        errors: list[str] = []
        retries: list[str] = []  # transport retries (counted by the study benchmark)
        tasks.append(
            (
                asyncio.create_task(
                    participant(base, slug, index, (0.5, 2.0), rng, answer_ms, other_ms, errors, retries, [])
                ),
                answer_ms,
                errors,
            )
        )
        index += 1
        await asyncio.sleep(every)
    for task, answer_ms, errors in tasks:
        await task
        stats.latency["study answer"] += answer_ms
        stats.errors["study answer"] += errors


async def sample_memory(pids: dict[str, int], until: float, every: float, timeline: list) -> None:  # type: ignore[type-arg]
    start = time.monotonic()
    while time.monotonic() < until:
        timeline.append((time.monotonic() - start, {name: rss_mb(pid) for name, pid in pids.items()}))
        await asyncio.sleep(every)


async def snapshots(pid: int, until: float, folder: Path | None) -> None:
    """A tracemalloc snapshot of the web process after one minute and one just before the end."""
    if folder is None:
        return
    await asyncio.sleep(min(60.0, max(0.0, until - time.monotonic()) / 2))
    os.kill(pid, signal.SIGUSR2)
    await asyncio.sleep(max(0.0, until - time.monotonic() - 5))
    os.kill(pid, signal.SIGUSR2)
    await asyncio.sleep(3)


def compare_snapshots(folder: Path, pid: int) -> None:
    import tracemalloc

    first, last = (tracemalloc.Snapshot.load(str(folder / f"{pid}-{i}.snap")) for i in (0, 1))
    total = [sum(s.size for s in snap.statistics("filename")) / 2**20 for snap in (first, last)]
    print(
        f"traced Python memory of the web process: {total[0]:.1f} MB after 1 min, "
        f"{total[1]:.1f} MB at the end"
    )
    print("largest growths (file:line, growth, count growth):")
    for stat in last.compare_to(first, "lineno")[:12]:
        frame = stat.traceback[0]
        where = f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
        print(f"  {where}  {stat.size_diff / 1024:+.0f} KiB ({stat.count_diff:+d} blocks)")


async def soak(base: str, slug: str, minutes: float, pids: dict[str, int], args: argparse.Namespace):  # type: ignore[no-untyped-def]
    stats = Stats()
    timeline: list = []  # type: ignore[type-arg]
    recent: list[str] = []
    until = time.monotonic() + minutes * 60
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await asyncio.gather(
            uploads(http, stats, until, args.upload_rate, recent),
            polls(http, stats, until, args.poll_rate, recent),
            participants(base, slug, stats, until, args.participant_every),
            crowd_pollers(base, stats, until, args.crowd_pollers, recent),
            sample_memory(pids, until + 1, max(minutes * 60 / 20, 2), timeline),
            snapshots(pids["web"], until, args.tracemalloc),
        )
    return stats, timeline


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--upload-rate", type=float, default=1.0, help="uploads per second")
    parser.add_argument("--poll-rate", type=float, default=5.0, help="status polls per second")
    parser.add_argument(
        "--participant-every", type=float, default=6.0, help="seconds between new participants"
    )
    parser.add_argument(
        "--crowd-pollers", type=int, default=200, help="clients polling job status once a second, at once"
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        default=None,
        metavar="DIR",
        help="run the web process under tracemalloc; snapshots after the first minute and at the end go to "
        "DIR and the biggest growths between them are printed (a leak grows; a warm-up does not)",
    )
    args = parser.parse_args()

    from bench_study_load import build_study

    with scratch_stack(
        args.redis,
        COLORIZE_RATE="100000",
        PHOTO_BUDGET="100000",
        STUDY_ANSWER_RATE="100000",
        STUDY_START_RATE="100000",  # every simulated participant comes from 127.0.0.1
        TORCH_THREADS="1",
    ) as stack:
        os.environ.update({k: stack.env[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL")})
        slug = build_study(10, ["cnn"], (5, 5), True)
        if args.tracemalloc:
            args.tracemalloc.mkdir(parents=True, exist_ok=True)
            stack.env["TRACEMALLOC_DIR"] = str(args.tracemalloc.resolve())
        stack.start("web", "serve", traced=bool(args.tracemalloc))
        stack.start("worker", "worker")
        stack.wait_healthy()
        time.sleep(5)  # let the worker come up
        pids = {name: proc.pid for name, proc in stack.procs.items()}
        stats, timeline = asyncio.run(soak(stack.base, slug, args.minutes, pids, args))
        engine = sa.create_engine(stack.env["DATABASE_URL"])
        with engine.connect() as c:
            done = c.execute(sa.text("select status, count(*) from jobs group by status")).all()
        engine.dispose()
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{args.minutes:g} min; uploads {args.upload_rate}/s, polls {args.poll_rate}/s, "
        f"a participant every {args.participant_every:g} s, {args.crowd_pollers} concurrent pollers"
    )
    print("".join(f"{h:>9}" for h in ("request", "count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms")))
    for kind in ("upload", "poll", "result", "study answer", "crowd poll"):
        lat = stats.latency[kind]
        cells = [percentile(lat, q) for q in (50, 95, 99)] + [max(lat) if lat else float("nan")]
        print(f"{kind:>9}{len(lat):>9}{len(stats.errors[kind]):>9}" + "".join(f"{v:>9.1f}" for v in cells))
    for kind, errs in stats.errors.items():
        if errs:
            print(f"  {kind} errors (first 3): {errs[:3]}")
    print("jobs by status at the end:", dict(done))
    print("RSS over time (MB):")
    for t, values in timeline:
        print(f"  t={t:6.0f}s  " + "  ".join(f"{k} {v:7.1f}" for k, v in values.items()))
    if args.tracemalloc:
        compare_snapshots(args.tracemalloc, pids["web"])


if __name__ == "__main__":
    main()
