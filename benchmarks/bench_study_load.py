"""Load benchmark of the study participant API (issue 5 §7): N simulated participants answering concurrently
against PostgreSQL through a real `colorlab serve` (uvicorn) on loopback.

Each participant opens the study page, consents, reads the instructions, then for every trial "thinks" for a
random time and posts the answer, as study.js does: the page carries the participant's state (no /state
request) and every state carries its trial's image inline (no image request). Measured: the latency of
every answer request (client side, loopback), errors (any non-2xx or transport error), and afterwards the
rows in the database (every answer stored exactly once, every participant completed).

    .venv/bin/python benchmarks/bench_study_load.py --participants 200   # the issue-15 burst, 0.5-1.5 s pace
    .venv/bin/python benchmarks/bench_study_load.py --participants 100 --think 0 0   # no think time (stress)
    .venv/bin/python benchmarks/bench_study_load.py --participants 200 --arrivals 1   # opening within 1 s
    .venv/bin/python benchmarks/bench_study_load.py --write-results  # also update benchmarks/RESULTS.md

Needs PostgreSQL (PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432); creates and drops its own
database `colorlab_study_bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from lean_http import LeanClient, LeanResponse, TransportError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PHOTOS = ROOT.parent / "shared" / "data" / "imagenet-samples"
DB_NAME = "colorlab_study_bench"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## User study"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    from backend.study.stats import percentile as pct

    return float(pct(values, q) or 0.0)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children (uvicorn's worker processes)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def prepare_database(pg_admin: str) -> str:
    admin = sa.create_engine(f"{pg_admin}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    return f"{pg_admin}/{DB_NAME}"


def drop_database(pg_admin: str) -> None:
    admin = sa.create_engine(f"{pg_admin}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    admin.dispose()


def build_study(
    n_photos: int, methods: list[str], trials: tuple[int, int], attention: bool, slug: str = "load-bench"
) -> str:
    """A ready, open study: the colorizations are finished directly in the job tables (channel-rotated
    photos), so that the benchmark measures the participant API, not the colorizers."""
    import numpy as np
    from sqlalchemy import select

    from backend.config import get_settings
    from backend.db import session_scope
    from backend.images import decode, encode_png
    from backend.models import Image, Job, JobStatus, utcnow
    from backend.stored_images import store_result
    from backend.study import builder
    from backend.study.models import Stimulus
    from backend.study.photos import PhotoFile

    settings = get_settings()
    photos = [PhotoFile(p.name, p.read_bytes()) for p in sorted(PHOTOS.glob("*.jpg"))[:n_photos]]
    spec = builder.StudySpec(
        title="Load benchmark",
        methods=methods,
        trials_part1=trials[0],
        trials_part2=trials[1],
        attention_checks=attention,
        completion_code="BENCH",
        slug=slug,
    )
    with session_scope() as session:
        study, _job_ids = builder.build_study(session, settings, spec, photos, check_available=False)
        for _stim, job in session.execute(
            select(Stimulus, Job).join(Job, Job.id == Stimulus.job_id).where(Stimulus.study_id == study.id)
        ).all():
            rgb = decode(session.get(Image, job.input_image_id).data, max_pixels=settings.max_pixels).rgb
            out = np.roll(rgb, 1, axis=-1)
            result = store_result(session, encode_png(out, compress_level=1), out.shape[1], out.shape[0])
            job.status, job.result_image_id, job.finished_at, job.progress = (
                JobStatus.done,
                result.id,
                utcnow(),
                1.0,
            )
        session.commit()
        builder.open_study(session, settings, study)
        return study.slug


async def participant(
    base: str,
    slug: str,
    index: int,
    think: tuple[float, float],
    rng: random.Random,
    answer_ms: list[float],
    other_ms: list[float],
    errors: list[str],
    retries: list[str],
    first_trial_ms: list[float],
    read: tuple[float, float] = (0.0, 0.0),
    arrival: float = 0.0,
) -> None:
    """One participant on its own keep-alive connection (lean_http: the load generator shares the 2 cores).
    ``read``: seconds spent reading the consent form and the instructions (0 = clicking straight through).
    ``arrival``: seconds after the start at which this participant opens the link.
    ``first_trial_ms`` gets the time this participant waited for the server before the first image was on
    screen: page, consent, instructions and the image (with no reading time, link to image)."""
    if arrival:
        await asyncio.sleep(arrival)
    async with LeanClient(base, timeout=30) as http:
        waited = 0.0

        async def call(method: str, path: str, sink: list[float], **kw: Any) -> LeanResponse | None:
            # Every call of the participant API is idempotent (answers per trial), so a request that meets a
            # kept-alive connection the server has just closed is sent again, as study.js does; counted apart.
            nonlocal waited
            t0 = time.perf_counter()
            for attempt in range(3):
                try:
                    res = await http.request(method, path, **kw)
                    break
                except TransportError as exc:
                    if attempt == 2:
                        errors.append(f"{method} {path}: {exc}")
                        return None
                    retries.append(f"{method} {path}: {exc}")
            elapsed = (time.perf_counter() - t0) * 1000
            sink.append(elapsed)
            waited += elapsed
            if res.status_code >= 400:
                errors.append(f"{method} {path}: {res.status_code} {res.text[:200]}")
                return None
            return res

        pid = f"bench{index:04d}"
        if await call("GET", f"/study/{slug}?participant={pid}", other_ms) is None:
            return
        if read[1]:
            await asyncio.sleep(rng.uniform(*read))  # reading the consent form
        res = await call("POST", f"/study/{slug}/api/start", other_ms, json={"participant": pid})
        if res is None:
            return
        if read[1]:
            await asyncio.sleep(rng.uniform(*read))  # reading the instructions
        res = await call("POST", f"/study/{slug}/api/begin", other_ms, json={})
        if res is None:
            return
        state = res.json()
        first = True
        while state["phase"] in ("part1", "part2"):
            trial = state["trial"]
            # As study.js: the image comes inline in the state; its URL is fetched only when it does not.
            if not trial.get("image") and await call("GET", trial["image_url"], other_ms) is None:
                return
            if first:
                first_trial_ms.append(waited)
                first = False
            pause = rng.uniform(*think)
            if pause:
                await asyncio.sleep(pause)
            body: dict[str, object] = {"trial_id": trial["id"], "response_ms": int(pause * 1000)}
            if trial["part"] == 1:
                body["response"] = rng.choice(["real", "fake"])
            else:
                body["rating"] = rng.randint(1, 4)
            res = await call("POST", f"/study/{slug}/api/answer", answer_ms, json=body)
            if res is None:
                return
            state = res.json()
        if state["phase"] != "done":
            errors.append(f"participant {pid} ended in phase {state['phase']}")


async def run_load(
    base: str,
    slug: str,
    n: int,
    think: tuple[float, float],
    seed: int,
    read: tuple[float, float] = (0, 0),
    arrivals: float = 0.0,
) -> dict:
    answer_ms: list[float] = []
    other_ms: list[float] = []
    errors: list[str] = []
    retries: list[str] = []
    first_trial_ms: list[float] = []
    rng = random.Random(seed)
    t0 = time.perf_counter()
    await asyncio.gather(
        *(
            participant(
                base,
                slug,
                i,
                think,
                random.Random(rng.random()),
                answer_ms,
                other_ms,
                errors,
                retries,
                first_trial_ms,
                read,
                rng.uniform(0, arrivals) if arrivals else 0.0,
            )
            for i in range(n)
        )
    )
    wall = time.perf_counter() - t0
    return {
        "first_trial_ms": first_trial_ms,
        "answer_ms": answer_ms,
        "other_ms": other_ms,
        "errors": errors,
        "retries": retries,
        "wall_s": wall,
    }


def count_rows(url: str, slug: str) -> dict[str, int]:
    """Rows of the measured study (not of the warm-up study)."""
    engine = sa.create_engine(url)
    mine = "study_id = (SELECT id FROM studies WHERE slug = :slug)"
    with engine.connect() as conn:

        def count(sql: str) -> int:
            return int(conn.scalar(sa.text(sql), {"slug": slug}) or 0)

        out = {
            "participants": count(f"SELECT count(*) FROM study_participants WHERE {mine}"),
            "completed": count(
                f"SELECT count(*) FROM study_participants WHERE {mine} AND completed_at IS NOT NULL"
            ),
            "trials": count(f"SELECT count(*) FROM study_trials WHERE {mine}"),
            "answered": count(f"SELECT count(*) FROM study_trials WHERE {mine} AND answered_at IS NOT NULL"),
        }
    engine.dispose()
    return out


COLUMNS = [
    "date",
    "machine",
    "load avg",
    "participants",
    "think s",
    "web workers",
    "answers",
    "errors",
    "transport retries",
    "rows answered / expected",
    "p50",
    "p95",
    "p99",
    "max",
    "other p99",
    "server CPU/request",
    "target met",
    "first trial p50 / max",
]
SECTION_INTRO = (
    "`benchmarks/bench_study_load.py`: N simulated participants answer concurrently through `colorlab serve` "
    "(uvicorn) on loopback against PostgreSQL. All of them open the study link at the same instant, consent, "
    'read the instructions, then for every trial wait a random "think time" and post the answer, as study.js '
    "does (since session 7 the page carries the participant's state and every state its trial's image, so "
    "there are no /state and image requests; before, each trial's image was a request of its own). The "
    "study: 20 photos × (real + cnn, fusion, gan), 5 + 5 trials. Answer latency is measured by "
    'the client per answer request (p50/p95/p99/max); "other p99" covers the page, consent (start), begin '
    "(and image) requests, including the opening burst where all participants consent at once. "
    '"First trial": per participant, from opening the link (page, consent, instructions) to the first image '
    "received. Server CPU is per request of any kind. A request that "
    "meets a kept-alive connection the server has just closed is sent again (the API is idempotent; study.js "
    'does the same): "transport retries". Rows are counted in the database afterwards. Re-run: '
    "`.venv/bin/python benchmarks/bench_study_load.py [--think 2 5] --write-results` (each run adds a row)."
    "\n\n" + "| " + " | ".join(COLUMNS) + " |\n" + "|" + "---|" * len(COLUMNS) + "\n"
)


def write_results(row: str) -> None:
    """Add one row to the table of the 'User study' section of RESULTS.md (the section is created if absent;
    other sections are left as they are)."""
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n"
    if SECTION not in text:
        text = text.rstrip() + "\n\n" + SECTION + "\n\n" + SECTION_INTRO
    start = text.index(SECTION)
    nxt = text.find("\n## ", start + len(SECTION))
    section = text[start:] if nxt == -1 else text[start:nxt]
    lines = section.rstrip("\n").split("\n")
    # After the last row of the section's run table (the one under COLUMNS), not of a later summary table.
    last_row = lines.index("| " + " | ".join(COLUMNS) + " |") + 1
    while last_row + 1 < len(lines) and lines[last_row + 1].startswith("|"):
        last_row += 1
    lines.insert(last_row + 1, row)
    new_section = "\n".join(lines) + "\n"
    text = text[:start] + new_section + ("" if nxt == -1 else text[nxt:])
    RESULTS_MD.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=100)
    ap.add_argument(
        "--think", type=float, nargs=2, default=(0.5, 1.5), help="think time range per answer (s)"
    )
    ap.add_argument(
        "--read",
        type=float,
        nargs=2,
        default=(0.0, 0.0),
        help="seconds reading the consent form, and again the instructions (default 0 0: straight through)",
    )
    ap.add_argument(
        "--arrivals",
        type=float,
        default=0.0,
        help="seconds over which the participants open the link, at uniform random times (default 0: all at "
        "the same instant, the strictest reading of 'in the same second')",
    )
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument(
        "--warm-up", type=int, default=20, help="participants through a warm-up study first (not measured)"
    )
    ap.add_argument("--methods", default="cnn,fusion,gan")
    ap.add_argument("--trials", type=int, nargs=2, default=(5, 5))
    ap.add_argument("--attention", action="store_true", help="attention checks on (one more trial per part)")
    ap.add_argument("--web-workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--pg", default=os.environ.get("PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--write-results", action="store_true", help="replace the 'User study' section of RESULTS.md"
    )
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()

    url = prepare_database(args.pg)
    tmp = Path(tempfile.mkdtemp(prefix="colorlab-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp),
        "ADMIN_PASSWORD": "bench-password",
        "SECRET_KEY": "bench-secret-key-0123456789abcdefghijklmnop",
        "STUDY_ANSWER_RATE": "1000",
        "STUDY_START_RATE": "1000000",  # every simulated participant comes from 127.0.0.1
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DATA_DIR", "ADMIN_PASSWORD", "SECRET_KEY")})
    subprocess.run(
        [sys.executable, "-m", "backend.cli", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    warm_slug = build_study(5, [m for m in args.methods.split(",") if m], (2, 2), False, slug="warm-up")
    slug = build_study(
        args.photos, [m for m in args.methods.split(",") if m], tuple(args.trials), args.attention
    )
    port = free_port()
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backend.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.web_workers),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start:\n" + (tmp / "serve.log").read_text()[-3000:])
            time.sleep(0.2)
        # A server that has just started compiles its templates and SQL and opens its database connections
        # on first use, in every worker process: warm it up on another study, as a server that has been
        # running would be, so that the burst measures serving, not start-up.
        asyncio.run(run_load(base, warm_slug, args.warm_up, (0.0, 0.0), args.seed + 1))
        server_cpu0, client_cpu0 = process_cpu(server.pid), time.process_time()
        load = run_load(
            base, slug, args.participants, tuple(args.think), args.seed, tuple(args.read), args.arrivals
        )
        out = asyncio.run(load)
        server_cpu, client_cpu = process_cpu(server.pid) - server_cpu0, time.process_time() - client_cpu0
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
    rows = count_rows(url, slug)
    per_participant = args.trials[0] + args.trials[1] + (2 if args.attention else 0)
    expected = args.participants * per_participant
    answers = out["answer_ms"]
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} CPU "
        f"(shared) · Python {platform.python_version()}",
        "participants": args.participants,
        "think_s": list(args.think),
        "arrivals_s": args.arrivals,
        "web_workers": args.web_workers,
        "answers_sent": len(answers),
        "transport_retries": len(out["retries"]),
        "answers_expected": expected,
        "errors": len(out["errors"]),
        "rows": rows,
        "wall_s": round(out["wall_s"], 1),
        "answers_per_s": round(len(answers) / out["wall_s"], 1),
        "requests": len(answers) + len(out["other_ms"]),
        "server_cpu_ms_per_request": round(
            1000 * server_cpu / max(1, len(answers) + len(out["other_ms"])), 2
        ),
        "client_cpu_s": round(client_cpu, 1),
        "server_cpu_s": round(server_cpu, 1),
        "load_average_after": load_average(),
        "answer_ms": {
            k: round(percentile(answers, q), 1)
            for k, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
        },
        "other_ms": {k: round(percentile(out["other_ms"], q), 1) for k, q in (("p50", 50), ("p99", 99))},
        "first_trial_ms": {
            k: round(percentile(out["first_trial_ms"], q), 1) for k, q in (("p50", 50), ("max", 100))
        },
    }
    ok = (
        result["errors"] == 0
        and rows["answered"] == expected == len(answers)
        and rows["completed"] == args.participants
        and result["answer_ms"]["p99"] < 100
        and result["first_trial_ms"]["max"] < 1000
    )
    result["pass"] = ok
    print(json.dumps(result, indent=1))
    for e in out["errors"][:10]:
        print("error:", e, file=sys.stderr)
    if args.write_results:
        a = result["answer_ms"]
        cells = [
            result["date"],
            result["machine"],
            result["load_average_after"],
            args.participants,
            f"{args.think[0]}-{args.think[1]}",
            args.web_workers,
            len(answers),
            result["errors"],
            result["transport_retries"],
            f"{rows['answered']} / {expected}",
            *(f"{a[k]} ms" for k in ("p50", "p95", "p99", "max")),
            f"{result['other_ms']['p99']} ms",
            f"{result['server_cpu_ms_per_request']} ms",
            "yes" if ok else "no",
            f"{result['first_trial_ms']['p50']} / {result['first_trial_ms']['max']} ms",
        ]
        write_results("| " + " | ".join(str(c) for c in cells) + " |")

    if not args.keep_db:
        drop_database(args.pg)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
