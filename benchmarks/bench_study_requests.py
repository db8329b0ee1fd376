"""Server CPU per kind of participant request, one at a time (no concurrency): what each step of a study
costs.

N participants open the study page, then N consent, N read the instructions (the state carries the first
image), N load that image by its URL (as an API client would; the page does not) and N answer, each kind as
one phase; the server process's CPU time over a phase, divided by N, is that kind's cost
(the process's CPU counter ticks at 10 ms, so N of a few hundred makes it exact to ~0.05 ms).

    .venv/bin/python benchmarks/bench_study_requests.py [--participants 400]

Needs PostgreSQL (PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432) and Redis: a scratch
database and Redis db (benchmarks/stack.py), removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable

from bench_study_load import build_study, process_cpu
from lean_http import LeanClient, LeanResponse
from stack import scratch_stack


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
    # The page no longer needs this request (the state carries the image); measured for API clients.
    await phase("image by its URL", lambda i: clients[i].request("GET", trial(i)["image_url"]))
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
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = ap.parse_args()
    with scratch_stack(args.redis, STUDY_ANSWER_RATE="100000", STUDY_START_RATE="1000000") as stack:
        os.environ.update({k: stack.env[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL")})
        slug = build_study(20, ["cnn", "fusion", "gan"], (5, 5), False)
        server = stack.start("web", "serve")
        stack.wait_healthy()
        asyncio.run(measure(stack.base, slug, 20, server.pid, "warm"))  # templates, SQL, connections
        cost = asyncio.run(measure(stack.base, slug, args.participants, server.pid, "p"))
    for name, ms in cost.items():
        print(f"{name:28s} {ms:6.2f} ms of server CPU")
    # What study.js makes: the page (with the state), consent, instructions (with the first image).
    opening = sum(cost[k] for k in ("study page", "consent (start)", "instructions read (begin)"))
    print(f"{'opening (page to first image)':28s} {opening:6.2f} ms")


if __name__ == "__main__":
    main()
