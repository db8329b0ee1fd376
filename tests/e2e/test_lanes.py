"""Two lanes with real worker processes: a feed-forward job never waits behind an iterative one, and
`colorlab run` starts one worker per lane, prints its URL only once the server answers and restarts a
worker that dies."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    EXEMPLAR_PAIRS,
    child_env,
    free_port,
    method_available,
    photo,
    start_service,
    wait_job,
)
from tests.e2e.test_services import Api

pytestmark = pytest.mark.slow


def exemplar_pair() -> tuple[Path, Path]:
    folder = EXEMPLAR_PAIRS / "example"
    return next(folder.glob("in1.*")), next(folder.glob("ref1.*"))


def test_fast_job_overtakes_a_running_iterative_job(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not (method_available("cnn") and method_available("exemplar")):
        pytest.fail("cnn and exemplar weights are needed (make test-weights)")
    env = child_env(DATA_DIR=tmp_path / "var", SWEEP_INTERVAL=2)
    base, _, _ = start_service(spawn, env, worker=None)
    fast = spawn("worker", "--lane", "fast", env=env, name="fast")
    slow = spawn("worker", "--lane", "iterative", env=env, name="iterative")
    fast.wait_for_log("ready", timeout=120)
    slow.wait_for_log("ready", timeout=120)
    api = Api(base)
    target, ref = exemplar_pair()
    long_id = api.submit(target, method="exemplar", reference=ref, iterations="5000", size="256")
    wait_job(api.job, long_id, timeout=120, until=("running",))

    cnn_id = api.submit(photo("003_"))
    job = wait_job(api.job, cnn_id, timeout=60)
    assert job["status"] == "done", job
    # Generous on a shared CPU; a single queue would make it wait the exemplar job's minutes.
    assert job["queue_seconds"] < 30, job
    assert api.job(long_id)["status"] == "running"
    api.http.post(f"/jobs/{long_id}/cancel")


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found.append(child)
        found.extend(_descendants(child))
    return found


def test_run_supervises_one_worker_per_lane(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")
    port = free_port()
    env = child_env(DATA_DIR=tmp_path / "var", PORT=port, SWEEP_INTERVAL=2)
    run = spawn("run", "--no-fetch", env=env)
    run.wait_for_log("ColorLab is running at", timeout=120)
    # The URL is printed only once the server answers.
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

    lanes = {_cmdline(pid): pid for pid in _children(run.popen.pid)}
    fast_pid = next(pid for cmd, pid in lanes.items() if "--lane fast" in cmd)
    assert any("--lane iterative" in cmd for cmd in lanes)

    # Kill the fast-lane worker (and its pool) outright: the supervisor restarts it after a back-off.
    for pid in [fast_pid, *_descendants(fast_pid)]:
        os.kill(pid, signal.SIGKILL)
    run.wait_for_log("fast-lane worker exited", timeout=30)
    run.wait_for_log("restarting the fast-lane worker", timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = [p for cmd, p in ((_cmdline(p), p) for p in _children(run.popen.pid)) if "--lane fast" in cmd]
        if alive and alive[0] != fast_pid:
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"no new fast-lane worker:\n{run.log()[-3000:]}")

    api = Api(f"http://127.0.0.1:{port}")
    job = wait_job(api.job, api.submit(photo("002_")), timeout=120)
    assert job["status"] == "done", job
