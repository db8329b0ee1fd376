"""End to end with real processes: `colorlab serve` + `colorlab worker` on PostgreSQL + Redis, and the
embedded default (`colorlab run`: SQLite + filesystem broker), including restarts."""

from __future__ import annotations

import io
import os
import signal

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import (
    EXEMPLAR_PAIRS,
    child_env,
    free_port,
    method_available,
    photo,
    start_service,
    wait_http,
    wait_job,
)
from worker.colorizers import lab

pytestmark = pytest.mark.slow


def check_colorized(result_png: bytes, source_path) -> None:  # type: ignore[no-untyped-def]
    out = np.asarray(Image.open(io.BytesIO(result_png)).convert("RGB"))
    src = np.asarray(Image.open(source_path).convert("RGB"))
    assert out.shape == src.shape
    dl = np.abs(lab.rgb_to_lightness(out) - lab.rgb_to_lightness(src))
    assert dl.mean() < 0.5
    chroma = np.hypot(*np.moveaxis(lab.rgb_to_lab(out)[..., 1:], -1, 0))
    assert chroma.mean() > 3


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30)

    def submit(self, path, method: str = "cnn", reference=None, **options) -> str:  # type: ignore[no-untyped-def]
        files = {"image": (path.name, path.read_bytes(), "image/jpeg")}
        if reference is not None:
            files["reference"] = (reference.name, reference.read_bytes(), "image/jpeg")
        r = self.http.post("/colorize", files=files, data={"method": method, **options})
        assert r.status_code == 202, r.text
        return r.json()["id"]

    def job(self, job_id: str) -> dict:
        r = self.http.get(f"/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()


def test_production_mode_postgres_redis(spawn, postgres_url, redis_url) -> None:  # type: ignore[no-untyped-def]
    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")
    env = child_env(DATABASE_URL=postgres_url, CELERY_BROKER_URL=redis_url, SWEEP_INTERVAL=2)
    base, _, _ = start_service(spawn, env)
    api = Api(base)
    source = photo("001_")
    job_id = api.submit(source)
    job = wait_job(api.job, job_id, timeout=120)
    assert job["status"] == "done", job
    assert job["run_seconds"] > 0 and job["queue_seconds"] is not None
    check_colorized(api.http.get(job["urls"]["result"]).content, source)
    head = api.http.head(job["urls"]["result"])  # `curl -I` on a result, through the real server
    assert head.status_code == 200 and head.headers["content-type"] == "image/png" and not head.content
    assert int(head.headers["content-length"]) == len(api.http.get(job["urls"]["result"]).content)

    folder = EXEMPLAR_PAIRS / "example"
    target, ref = next(folder.glob("in1.*")), next(folder.glob("ref1.*"))
    guided_id = api.submit(target, method="unet-bins-reference", reference=ref)
    job = wait_job(api.job, guided_id, timeout=120)
    assert job["status"] == "done", job
    assert Image.open(io.BytesIO(api.http.get(job["urls"]["result"]).content)).size == Image.open(target).size

    if method_available("exemplar"):  # its default init=matched starts from the reference-guided net
        ex_id = api.submit(target, method="exemplar", reference=ref, iterations="40", size="64")
        job = wait_job(api.job, ex_id, timeout=180)
        assert job["status"] == "done", job
        out = Image.open(io.BytesIO(api.http.get(job["urls"]["result"]).content))
        assert out.size == Image.open(target).size


def test_embedded_default_survives_restarts(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")
    port = free_port()
    env = child_env(
        DATA_DIR=tmp_path / "var", PORT=port, SWEEP_INTERVAL=1, STALE_AFTER=4, HEARTBEAT_INTERVAL=1
    )
    # 1. Only the web app: jobs are accepted and wait in the filesystem queue.
    spawn("migrate", env=env).popen.wait(timeout=60)
    server = spawn("serve", env=env)
    wait_http(f"http://127.0.0.1:{port}/healthz")
    api = Api(f"http://127.0.0.1:{port}")
    sources = [photo(p) for p in ("001_", "002_")]
    queued = [api.submit(s) for s in sources]
    assert {api.job(j)["status"] for j in queued} == {"queued"}
    server.stop()
    # 2. `colorlab run` (what `make run` starts) picks them up after the restart.
    run = spawn("run", "--no-fetch", env=env)
    run.wait_for_log("ColorLab is running at", timeout=60)
    wait_http(f"http://127.0.0.1:{port}/healthz")
    for job_id, source in zip(queued, sources, strict=True):
        job = wait_job(api.job, job_id, timeout=120)
        assert job["status"] == "done", job
        check_colorized(api.http.get(job["urls"]["result"]).content, source)
    # 3. kill -9 of the whole `make run` process group in the middle of an iterative job: after a restart
    #    the job is found again in the database and completes.
    if method_available("exemplar"):
        folder = EXEMPLAR_PAIRS / "example"
        target, ref = next(folder.glob("in1.*")), next(folder.glob("ref1.*"))
        job_id = api.submit(target, method="exemplar", reference=ref, iterations="100", size="64")
        wait_job(api.job, job_id, timeout=90, until=("running",))
        os.killpg(run.popen.pid, signal.SIGKILL)
        run.popen.wait(timeout=10)
        run2 = spawn("run", "--no-fetch", env=env)
        run2.wait_for_log("ColorLab is running at", timeout=60)
        wait_http(f"http://127.0.0.1:{port}/healthz")
        job = wait_job(api.job, job_id, timeout=240)
        assert job["status"] == "done", job
        assert job["attempts"] == 2
