"""A throw-away ColorLab stack for benchmarks: a scratch PostgreSQL database, a Redis database, migrated,
with `colorlab serve` / `colorlab worker` processes on loopback, all removed afterwards."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")


@dataclass
class Stack:
    env: dict[str, str]
    base: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str, traced: bool = False) -> subprocess.Popen[bytes]:
        """`colorlab <args>`; ``traced``: under tracemalloc (benchmarks/traced_cli.py, SIGUSR2 = snapshot)."""
        entry = [str(ROOT / "benchmarks" / "traced_cli.py")] if traced else ["-m", "backend.cli"]
        proc = subprocess.Popen(
            [sys.executable, *entry, *args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs[name] = proc
        return proc

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.base} did not come up within {timeout:.0f} s")


@contextmanager
def scratch_stack(redis_url: str, **settings: str) -> Iterator[Stack]:
    """Create a database and an empty Redis db, migrate, and yield a Stack; clean everything up afterwards."""
    import redis
    import sqlalchemy as sa

    dbname = f"colorlab_bench_{secrets.token_hex(3)}"
    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
    with socket.socket() as probe:  # a free port (a random one may be another stack's)
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    weights = Path(os.environ.get("WEIGHTS_DIR", ROOT / "var" / "weights")).resolve()
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{dbname}",
        "CELERY_BROKER_URL": redis_url,
        "PORT": str(port),
        "WEIGHTS_DIR": str(weights),
        **settings,
    }
    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()
    stack = Stack(env=env, base=f"http://127.0.0.1:{port}")
    try:
        subprocess.run(
            [sys.executable, "-m", "backend.cli", "migrate"],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        yield stack
    finally:
        for proc in stack.procs.values():
            proc.terminate()
        for proc in stack.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.flushdb()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        admin.dispose()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn/celery pool processes), in MB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(c) for c in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]
