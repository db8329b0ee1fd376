"""Faults with real processes: a worker killed mid-job, a flushed Redis queue, PostgreSQL restarted under
traffic. Nothing committed is lost and the API never answers 500."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa

from tests.conftest import (
    EXEMPLAR_PAIRS,
    child_env,
    free_port,
    method_available,
    photo,
    start_service,
    wait_job,
)

# serial: run alone after the parallel part of `make test` (PostgreSQL restarts, crowds, timing)
pytestmark = [pytest.mark.slow, pytest.mark.serial]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def submit(
    http: httpx.Client, path: Path, method: str = "cnn", reference: Path | None = None, **options: str
):  # type: ignore[no-untyped-def]
    files = {"image": (path.name, path.read_bytes(), "image/jpeg")}
    if reference is not None:
        files["reference"] = (reference.name, reference.read_bytes(), "image/jpeg")
    return http.post("/colorize", files=files, data={"method": method, **options})


def test_worker_killed_mid_job_is_completed_by_another(spawn, postgres_url, redis_url) -> None:  # type: ignore[no-untyped-def]
    if not method_available("exemplar"):
        pytest.skip("exemplar weights not fetched")
    env = child_env(
        DATABASE_URL=postgres_url,
        CELERY_BROKER_URL=redis_url,
        SWEEP_INTERVAL=1,
        STALE_AFTER=3,
        HEARTBEAT_INTERVAL=0.5,
        RESUME_STATE_INTERVAL=0.5,
    )
    base, _, first = start_service(spawn, env, worker="worker-a")
    http = httpx.Client(base_url=base, timeout=30)
    folder = EXEMPLAR_PAIRS / "example"
    r = submit(
        http, next(folder.glob("in1.*")), "exemplar", next(folder.glob("ref1.*")), iterations="60", size="64"
    )
    job_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while (http.get(f"/jobs/{job_id}").json()["progress"]["step"] or 0) < 10:  # a few saves made
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.2)
    os.killpg(first.popen.pid, signal.SIGKILL)  # the worker and its pool process, mid-job
    first.popen.wait(timeout=10)
    second = spawn("worker", env=env, name="worker-b")
    second.wait_for_log("ready", timeout=90)
    job = wait_job(lambda j: http.get(f"/jobs/{j}").json(), job_id, timeout=240)
    assert job["status"] == "done", job
    assert job["attempts"] == 2
    # the second worker went on from the first one's last saved iteration, not from the first
    assert job["progress"]["resumed_from"] > 0 and job["progress"]["step"] == 60, job["progress"]


def test_flushed_queue_is_rebuilt_from_the_database(spawn, postgres_url, redis_url) -> None:  # type: ignore[no-untyped-def]
    env = child_env(
        DATABASE_URL=postgres_url,
        CELERY_BROKER_URL=redis_url,
        SWEEP_INTERVAL=1,
        REQUEUE_AFTER=2,
        COLORIZE_RATE=100000,
        PHOTO_BUDGET=100000,
    )
    base, _, _ = start_service(spawn, env, worker=None)
    http = httpx.Client(base_url=base, timeout=30)
    sources = sorted(photo("").parent.glob("*.jpg"))[:10]
    ids = [submit(http, sources[i % len(sources)]).json()["id"] for i in range(50)]
    broker = redis.Redis.from_url(redis_url)
    assert broker.llen("fast") == 50  # cnn jobs: the fast lane
    broker.flushdb()  # every message is gone
    worker = spawn("worker", env=env)
    worker.wait_for_log("ready", timeout=90)
    deadline = time.monotonic() + 240
    statuses: Counter[str] = Counter()
    while time.monotonic() < deadline:
        statuses = Counter(http.get(f"/jobs/{j}").json()["status"] for j in ids)
        if statuses["done"] == 50:
            break
        time.sleep(1)
    assert statuses["done"] == 50, statuses


@pytest.fixture
def private_postgres() -> Iterator[tuple[str, Path, list[str]]]:
    """A PostgreSQL server of this test's own (so it can be restarted without disturbing anything else)."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL server binaries are not installed")
    root = Path(tempfile.mkdtemp(prefix="colorlab-pg-", dir="/tmp"))
    data = root / "data"
    shutil.chown(root, "postgres", "postgres")
    port = free_port()

    def pg(*args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120
        )

    pg(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w"]
    pg(*ctl, "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", root, ctl
    finally:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *ctl, "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_restart_under_traffic(spawn, private_postgres, redis_url) -> None:  # type: ignore[no-untyped-def]
    url, root, ctl = private_postgres
    env = child_env(DATABASE_URL=url, CELERY_BROKER_URL=redis_url, COLORIZE_RATE=100000, PHOTO_BUDGET=100000)
    base, _, _ = start_service(spawn, env, worker=None)
    http = httpx.Client(base_url=base, timeout=30)
    source = photo("001_")
    accepted: list[str] = []
    log: list[tuple[float, int]] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            r = submit(http, source)
            log.append((time.monotonic(), r.status_code))
            if r.status_code == 202:
                accepted.append(r.json()["id"])
            if accepted:
                log.append((time.monotonic(), http.get(f"/jobs/{accepted[-1]}").status_code))
            time.sleep(0.05)

    thread = threading.Thread(target=traffic)
    thread.start()
    time.sleep(2)
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *ctl, "-m", "fast", "stop"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    down_at = time.monotonic()
    time.sleep(3)
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *ctl, "start"], check=True, capture_output=True, timeout=60
    )
    up_at = time.monotonic()
    time.sleep(6)
    stop.set()
    thread.join(timeout=30)
    codes = Counter(code for _, code in log)
    assert 500 not in codes and all(code in (200, 202, 503) for code in codes), codes
    assert any(code == 503 for t, code in log if down_at < t < up_at), "the outage was never seen"
    recovered = [t for t, code in log if t > up_at and code in (200, 202)]
    assert recovered and recovered[0] - up_at < 5, "no success within 5 s of the restart"
    assert all(code != 503 for t, code in log if t > up_at + 5)
    engine = sa.create_engine(url)
    with engine.connect() as c:
        stored = {row[0] for row in c.execute(sa.text("select id from jobs"))}
    engine.dispose()
    assert set(accepted) <= stored  # every job the API accepted is still there
    assert root.exists()


def test_a_job_that_always_fails_is_retried_then_failed(spawn, postgres_url, redis_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A real worker whose eccv16 weights are garbage (present and unpinned, so the method looks available,
    but unloadable): every attempt fails, the job is retried JOB_MAX_ATTEMPTS times with back-off, then marked
    failed with the reason, and no message keeps coming back. A pinned file of the right size with other
    bytes (flipped bits) fails its job at once: no attempt could load it."""
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "colorization_release_v2-9b330a0b.pth").write_bytes(b"this is not a torch file" * 100)
    flipped = weights / "efficientnet-lite0-57934424.pth"
    flipped.write_bytes(b"\0" * 18_826_032)  # the pinned size: only its sha256 tells it apart
    env = child_env(
        DATABASE_URL=postgres_url,
        CELERY_BROKER_URL=redis_url,
        WEIGHTS_DIR=weights,
        JOB_MAX_ATTEMPTS=3,
        SWEEP_INTERVAL=1,
    )
    base, _, worker = start_service(spawn, env)
    http = httpx.Client(base_url=base, timeout=30)
    r = submit(http, photo("001_"), "eccv16")
    assert r.status_code == 202, r.text
    damaged = submit(http, photo("001_"), "fusion")
    assert damaged.status_code == 202, damaged.text
    job = wait_job(lambda j: http.get(f"/jobs/{j}").json(), r.json()["id"], timeout=120, until=("failed",))
    assert job["attempts"] == 3 and "failed after 3 attempts" in job["error"], job
    assert "its weights cannot be loaded" in job["error"], job["error"]
    assert "`colorlab weights fetch eccv16 --force`" in job["error"], job["error"]
    done = http.get(f"/jobs/{damaged.json()['id']}").json()
    assert done["status"] == "failed" and done["attempts"] == 1, done
    assert "efficientnet-lite0-57934424.pth are damaged (sha256" in done["error"], done
    assert "colorlab weights fetch efficientnet-lite0 --force" in done["error"], done
    time.sleep(8)  # nothing redelivers it
    again = http.get(f"/jobs/{job['id']}").json()
    assert again["status"] == "failed" and again["attempts"] == 3
    assert worker.log().count("attempt") >= 3
