"""Server CPU per kind of participant request, one at a time (no concurrency): what each step of a study
costs.

N participants open the study page, then N consent, N read the instructions, N load their first image and N
answer, each kind as one phase; the server process's CPU time over a phase, divided by N, is that kind's cost
(the process's CPU counter ticks at 10 ms, so N of a few hundred makes it exact to ~0.05 ms).

    .venv/bin/python benchmarks/bench_study_requests.py [--participants 400]

Needs PostgreSQL (PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432); creates and drops the
database of bench_study_load.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from bench_study_load import build_study, drop_database, free_port, prepare_database, process_cpu
from lean_http import LeanClient, LeanResponse

ROOT = Path(__file__).resolve().parent.parent


async def measure(base: str, slug: str, n: int, pid: int, prefix: str) -> dict[str, float]:
    clients = [LeanClient(base) for _ in range(n)]
    states: list[dict] = [{} for _ in range(n)]
    cost: dict[str, float] = {}

    async def phase(name: str, call: Callable[[int], Awaitable[LeanResponse]]) -> None:
        cpu0 = process_cpu(pid)
        for i in range(n):
            res = await call(i)
            if res.status_code >= 400:
                raise SystemExit(f"{name}: {res.status_code} {res.text[:200]}")
            if name == "instructions read (begin)":
                states[i] = res.json()
        cost[name] = (process_cpu(pid) - cpu0) * 1000 / n

    def trial(i: int) -> dict:
        return states[i]["trial"]

    await phase("health check (floor)", lambda i: clients[i].request("GET", "/healthz"))
    await phase("study page", lambda i: clients[i].request("GET", f"/study/{slug}?participant={prefix}{i}"))
    await phase(
        "consent (start)",
        lambda i: clients[i].request(
            "POST", f"/study/{slug}/api/start", json={"participant": f"{prefix}{i}"}
        ),
    )
    await phase(
        "instructions read (begin)", lambda i: clients[i].request("POST", f"/study/{slug}/api/begin", json={})
    )
    await phase("first image", lambda i: clients[i].request("GET", trial(i)["image_url"]))
    await phase(
        "answer",
        lambda i: clients[i].request(
            "POST",
            f"/study/{slug}/api/answer",
            json={"trial_id": trial(i)["id"], "response": "real", "response_ms": 900},
        ),
    )
    for client in clients:
        await client.aclose()
    return cost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--participants", type=int, default=400)
    ap.add_argument("--pg", default=os.environ.get("PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432"))
    args = ap.parse_args()
    url = prepare_database(args.pg)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": tempfile.mkdtemp(prefix="colorlab-bench-"),
        "ADMIN_PASSWORD": "bench-password",
        "SECRET_KEY": "bench-secret-key-0123456789abcdefghijklmnop",
        "STUDY_ANSWER_RATE": "100000",
        "STUDY_START_RATE": "1000000",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DATA_DIR", "ADMIN_PASSWORD", "SECRET_KEY")})
    subprocess.run([sys.executable, "-m", "backend.cli", "migrate"], env=env, cwd=ROOT, check=True)
    slug = build_study(20, ["cnn", "fusion", "gan"], (5, 5), False)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(measure(base, slug, 20, server.pid, "warm"))  # warm-up: templates, SQL, connections
        cost = asyncio.run(measure(base, slug, args.participants, server.pid, "p"))
    finally:
        server.terminate()
        server.wait(timeout=20)
        drop_database(args.pg)
    for name, ms in cost.items():
        print(f"{name:28s} {ms:6.2f} ms of server CPU")
    opening = sum(v for k, v in cost.items() if k not in ("health check (floor)", "answer"))
    print(f"{'opening (page to image)':28s} {opening:6.2f} ms")


if __name__ == "__main__":
    main()
