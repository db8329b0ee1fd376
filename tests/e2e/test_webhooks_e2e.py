"""Webhooks end to end: `colorlab serve` + `colorlab worker` on PostgreSQL + Redis call a real receiver when
a job and a batch have finished, signed, and call again after the receiver failed."""

from __future__ import annotations

import time

import httpx
import pytest
from standardwebhooks import Webhook

from tests.backend.test_api import png
from tests.backend.test_webhooks import SECRET, expected_signature
from tests.conftest import Receiver, child_env, photo, start_service, wait_job

pytestmark = pytest.mark.slow


def wait_calls(receiver: Receiver, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.calls) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(receiver.calls) >= n, f"{len(receiver.calls)} of {n} calls after {timeout} s"


def test_the_worker_calls_webhooks_and_retries(spawn, postgres_url, redis_url, receiver) -> None:  # type: ignore[no-untyped-def]
    env = child_env(
        DATABASE_URL=postgres_url, CELERY_BROKER_URL=redis_url, SWEEP_INTERVAL=2, WEBHOOK_SECRET=SECRET
    )
    base, _, _ = start_service(spawn, env)
    http = httpx.Client(base_url=base, timeout=30)
    receiver.statuses = [500]  # the first call fails: the worker calls again RETRY_AFTER_SECONDS[0] later
    source = photo("001_")
    r = http.post(
        "/colorize",
        files={"image": (source.name, source.read_bytes(), "image/jpeg")},
        data={"webhook": receiver.url},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert wait_job(lambda i: http.get(f"/jobs/{i}").json(), job_id)["status"] == "done"
    wait_calls(receiver, 2, timeout=60)
    for call in receiver.calls:
        headers = {k.lower(): v for k, v in call["headers"].items()}
        assert headers["webhook-signature"] == expected_signature(SECRET, headers, call["body"])
        Webhook(SECRET).verify(call["body"], headers)  # as a receiver would, with the reference library
    first, second = receiver.bodies()
    assert first["type"] == second["type"] == "job.finished" and second["data"]["status"] == "done"
    hook = http.get(f"/jobs/{job_id}").json()["webhook"]
    assert hook["state"] == "delivered" and hook["attempts"] == 2 and hook["last_status"] == 200

    r = http.post(
        "/batches",
        files=[("images", ("a.png", png(), "image/png")), ("images", ("b.png", png((80, 60)), "image/png"))],
        data={"webhook": receiver.url},
    )
    assert r.status_code == 202, r.text
    wait_calls(receiver, 3, timeout=90)
    batch = receiver.bodies()[2]
    assert batch["type"] == "batch.finished" and batch["data"]["id"] == r.json()["id"]
    assert batch["data"]["finished"] and batch["data"]["counts"] == {"done": 2}
    time.sleep(3)  # a sweep round later: still one call for the batch
    assert len(receiver.calls) == 3
