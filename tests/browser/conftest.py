"""Browser tests: real `colorlab serve` + `colorlab worker` processes on a temporary SQLite database with the
filesystem broker, driven by headless Chromium through Playwright (the Debian `chromium`, no downloads).

Two stacks, each started once per module:
- ``stack``: server + worker with the configured weights (jobs really run);
- ``idle_stack``: a server alone, with an empty weights directory: jobs stay queued (nothing consumes them)
  and every method whose weights live in WEIGHTS_DIR is unavailable, which the upload page must show.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, Proc, child_env, free_port, photo, stop_all, wait_http

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"


@dataclass
class Stack:
    base_url: str
    procs: list[Proc]

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log()[-3000:]}" for p in self.procs)


def start_stack(tmp: Path, *, worker: bool, **settings: object) -> Iterator[Stack]:
    env = child_env(DATA_DIR=tmp / "var", SWEEP_INTERVAL=2, **settings)
    migrated = subprocess.run(
        [sys.executable, "-m", "backend.cli", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    procs: list[Proc] = []
    if worker:
        procs.append(Proc([sys.executable, "-m", "backend.cli", "worker"], env, tmp / "worker.log"))
    port = free_port()
    serve = [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)]
    procs.append(Proc(serve, env, tmp / "serve.log"))
    stack = Stack(f"http://127.0.0.1:{port}", procs)
    try:
        wait_http(f"{stack.base_url}/healthz", timeout=60)
        if worker:
            procs[0].wait_for_log("ready", timeout=120)
        yield stack
    finally:
        stop_all(procs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("stack"), worker=True)


@pytest.fixture(scope="module")
def idle_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("idle")
    (tmp / "no-weights").mkdir()
    yield from start_stack(tmp, worker=False, WEIGHTS_DIR=tmp / "no-weights")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh browser context (own cookie, so its own history) that fails the test on a JS error or a
    Content-Security-Policy violation, and keeps a screenshot when the test fails."""
    yield from _checked_page(browser, request, viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone_page(browser, request: pytest.FixtureRequest) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """As :func:`page`, on a phone: a narrow touch screen (taps, no mouse)."""
    yield from _checked_page(
        browser,
        request,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )


def _checked_page(browser, request: pytest.FixtureRequest, **options: object) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    yield pg
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not problems, problems


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report


def serve_study(tmp: Path, spec: Any, photos: list[Any]) -> Iterator[str]:
    """An open study built from ``spec`` and ``photos`` (fake colorizations) on its own database under
    ``tmp``, served by a real `colorlab serve`; yields the server's address."""
    from backend.config import get_settings
    from backend.db import session_scope
    from backend.study import builder
    from tests.backend.study.conftest import ADMIN_PASSWORD, SECRET_KEY, finish_jobs
    from tests.conftest import apply_settings, migrate, reset_caches

    with pytest.MonkeyPatch.context() as mp:
        apply_settings(mp, DATA_DIR=tmp / "var", ADMIN_PASSWORD=ADMIN_PASSWORD, SECRET_KEY=SECRET_KEY)
        migrate()
        settings = get_settings()
        with session_scope() as session:
            study = builder.create_study(session, settings, spec, photos, check_available=False)
            finish_jobs(session, study)
            builder.open_study(session, settings, study)
        reset_caches()
    port = free_port()
    env = child_env(DATA_DIR=tmp / "var", ADMIN_PASSWORD=ADMIN_PASSWORD, SECRET_KEY=SECRET_KEY)
    server = Proc([sys.executable, "-m", "backend.cli", "serve", "--port", str(port)], env, tmp / "serve.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def sample_photo() -> Path:
    from tests.conftest import photo

    return photo("001_")


def result_rgb(base_url: str, job_id: str) -> np.ndarray:
    """The job's result as RGB uint8 (H, W, 3), fetched as a browser would."""
    png = httpx.get(f"{base_url}/jobs/{job_id}/result.png").content
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def wait_done(base_url: str, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base_url}/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            assert job["status"] == "done", job
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def colorize_lakeside(base_url: str, page: Any = None) -> str:
    """The lakeside photo through the default method; the finished job's id. With ``page``, sent from its
    browser, which then is the job's maker (it may delete it); without, by a program of its own."""
    data = photo("975_").read_bytes()
    if page is not None:
        image = {"name": "lakeside.jpg", "mimeType": "image/jpeg", "buffer": data}
        sent = page.request.post(f"{base_url}/colorize", multipart={"image": image})
        assert sent.status == 202, sent.text()
        job_id: str = sent.json()["id"]
    else:
        created = httpx.post(f"{base_url}/colorize", files={"image": ("lakeside.jpg", data, "image/jpeg")})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
    wait_done(base_url, job_id)
    return job_id


def submit_small_exemplar(page) -> None:  # type: ignore[no-untyped-def]
    """On the upload page with a photo and `exemplar` chosen: an example reference, a small slow run (32 px,
    500 iterations: it stays running while a test looks at it), submitted; returns on the job's page."""
    import re

    page.locator('.ref-option[data-source="example"]').first.click()
    if not page.locator("#opt-size").is_visible():  # the options fold away on narrow screens
        page.locator("#options-section summary").click()
    page.fill("#opt-size", "32")
    page.fill("#opt-iterations", "500")
    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/jobs/[\w-]+/view$"))
