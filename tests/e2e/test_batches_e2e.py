"""A batch with real processes (PostgreSQL + Redis, `colorlab serve` + a fast-lane worker): the worker is
killed and the web app restarted in the middle, and every photo still comes out, in one zip named after the
originals."""

from __future__ import annotations

import io
import signal
import time
import zipfile

import httpx
import pytest

from tests.conftest import child_env, free_port, method_available, photo, wait_http

pytestmark = pytest.mark.slow


def test_batch_survives_worker_kill_and_server_restart(spawn, postgres_url, redis_url) -> None:  # type: ignore[no-untyped-def]
    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")
    port = free_port()
    env = child_env(
        DATABASE_URL=postgres_url,
        CELERY_BROKER_URL=redis_url,
        PORT=port,
        SWEEP_INTERVAL=1,
        STALE_AFTER=4,
        HEARTBEAT_INTERVAL=1,
        REQUEUE_AFTER=5,
        BATCH_MAX=2,  # small forward passes, so the kill lands mid-batch
    )
    spawn("migrate", env=env).popen.wait(timeout=60)
    server = spawn("serve", env=env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz")
    sources = sorted(photo("").parent.glob("*.jpg"))[:12]
    files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in sources]
    r = httpx.post(f"{base}/batches", files=files, data={"method": "cnn"}, timeout=120)
    assert r.status_code == 202, r.text
    status_url = f"{base}{r.json()['status_url']}"
    assert r.json()["accepted"] == 12

    worker = spawn("worker", "--lane", "fast", env=env, name="fast")
    deadline = time.monotonic() + 120
    while httpx.get(status_url).json()["counts"].get("done", 0) < 2:
        assert time.monotonic() < deadline, httpx.get(status_url).json()
        time.sleep(0.2)
    worker.stop(sig=signal.SIGKILL)
    server.stop()
    server = spawn("serve", env=env)
    wait_http(f"{base}/healthz")
    assert httpx.get(status_url).json()["counts"].get("done", 0) < 12  # the kill did land mid-batch
    spawn("worker", "--lane", "fast", env=env, name="fast-again")

    deadline = time.monotonic() + 240
    batch = httpx.get(status_url).json()
    while not batch["finished"]:
        assert time.monotonic() < deadline, batch
        time.sleep(1)
        batch = httpx.get(status_url).json()
    assert batch["counts"] == {"done": 12}, batch
    zipped = httpx.get(f"{status_url}/results.zip", timeout=120)
    assert zipped.status_code == 200
    names = sorted(zipfile.ZipFile(io.BytesIO(zipped.content)).namelist())
    assert names == sorted(f"{p.stem}-cnn.png" for p in sources)
