"""Shared fixtures: real databases (SQLite file, PostgreSQL), real Redis, real worker and server processes."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()
IMAGENET = SHARED_DATA / "imagenet-samples"
EXEMPLAR_PAIRS = SHARED_DATA / "exemplar-pairs"
PG_ADMIN_URL = os.environ.get("COLORLAB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_HOST = os.environ.get("COLORLAB_TEST_REDIS", "redis://127.0.0.1:6379")
WEIGHTS_DIR = Path(os.environ.get("WEIGHTS_DIR", ROOT / "var" / "weights")).resolve()

# Settings the tests control; anything else comes from the defaults.
_ENV_KEYS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "DATA_DIR",
    "WEIGHTS_DIR",
    "SWEEP_INTERVAL",
    "REQUEUE_AFTER",
    "STALE_AFTER",
    "HEARTBEAT_INTERVAL",
    "JOB_MAX_ATTEMPTS",
    "TORCH_THREADS",
)


def photo(name_prefix: str = "001_") -> Path:
    """A real photo from ../shared/data/imagenet-samples."""
    return next(IMAGENET.glob(f"{name_prefix}*.jpg"))


def photo_bytes(name_prefix: str = "001_") -> bytes:
    return photo(name_prefix).read_bytes()


def method_available(name: str) -> bool:
    from worker.colorizers import methods

    info = methods.get(name)
    return info is not None and info.unavailable_reason(WEIGHTS_DIR) is None


def keep_for_a_study(job_id: str) -> None:
    """Make a job a stimulus of a minimal user study (as the study builder does), so it is kept."""
    from backend.db import session_scope
    from backend.models import Job
    from backend.study.models import Stimulus, Study, StudyPhoto

    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        study = Study(slug=f"kept-{job_id[:8].lower()}", title="Kept")  # one study per kept job
        s.add(study)
        s.flush()
        image = job.input_image_id
        photo = StudyPhoto(study_id=study.id, position=0, name="p", image_id=image, gray_image_id=image)
        s.add(photo)
        s.flush()
        s.add(Stimulus(study_id=study.id, photo_id=photo.id, condition="cnn", job_id=job_id))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def apply_settings(monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    """Point this process's settings at a test configuration and drop cached engines/apps."""
    for key in _ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WEIGHTS_DIR", str(WEIGHTS_DIR))
    for key, value in values.items():
        monkeypatch.setenv(key.upper(), str(value))
    reset_caches()


def reset_caches() -> None:
    from backend import db, queue, ratelimit
    from backend.config import get_settings

    get_settings.cache_clear()
    ratelimit.reset()
    db.reset_caches()
    queue.reset()


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test starts on its own embedded default (SQLite file + filesystem broker in tmp_path)."""
    apply_settings(monkeypatch, DATA_DIR=tmp_path / "var")
    yield
    reset_caches()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    import sqlalchemy as sa

    name = f"colorlab_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        reset_caches()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database number of its own, emptied before and after."""
    import redis

    # `make test` runs two pytest-xdist workers: each draws from its own half of the databases 1-14
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    half = int(worker[2:]) % 2 if worker.startswith("gw") else None
    number = 1 + secrets.randbelow(14) if half is None else 1 + 7 * half + secrets.randbelow(7)
    url = f"{REDIS_HOST}/{number}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def migrate() -> None:
    from backend import migrate as mig

    mig.upgrade()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Run the test once on the SQLite default and once on PostgreSQL (migrated)."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        apply_settings(monkeypatch, DATA_DIR=tmp_path / "var", DATABASE_URL=url)
    migrate()
    return request.param


@pytest.fixture
def client(database: str):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from backend.main import create_app

    with TestClient(create_app()) as c:
        yield c


class Proc:
    """A child process with its log file; stopped (and its log shown on failure) by the fixture."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115
        self.popen = subprocess.Popen(
            args, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if self.popen.poll() is not None:
                raise AssertionError(f"process exited ({self.popen.returncode}):\n{self.log()[-4000:]}")
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} not seen within {timeout}s:\n{self.log()[-4000:]}")

    def stop(self, sig: int = 15, timeout: float = 20) -> None:
        self.send(sig)
        self.wait_stopped(timeout)

    def send(self, sig: int = 15) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def wait_stopped(self, timeout: float = 20) -> None:
        """Waits for the exit after :meth:`send`; kills the process group when it takes longer."""
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, 9)
            self.popen.wait()
        self._log.close()


def child_env(**values: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_KEYS}
    env["WEIGHTS_DIR"] = str(WEIGHTS_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TORCH_THREADS", "1")
    for key, value in values.items():
        env[key.upper()] = str(value)
    return env


@contextlib.contextmanager
def statements_sent(session: Any) -> Iterator[list[str]]:
    """The SQL of every statement the session's engine sends while the block runs (SQLAlchemy's
    ``before_cursor_execute``, which db.DriverStatement fires too)."""
    from sqlalchemy import event

    sent: list[str] = []

    def record(*args: object) -> None:
        sent.append(str(args[2]))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def serve_refused(env: dict[str, str]) -> str:
    """`colorlab serve` with a configuration it must refuse: it exits with a clean configuration error (no
    traceback); returns what it printed on stderr."""
    serve = [sys.executable, "-m", "backend.cli", "serve"]
    result = subprocess.run(serve, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "configuration error" in result.stderr
    return result.stderr


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start `colorlab <args>` processes with given settings; all are stopped at the end of the test."""
    procs: list[Proc] = []

    def start(*args: str, env: dict[str, str], name: str | None = None) -> Proc:
        log = tmp_path / f"{name or args[0]}-{len(procs)}.log"
        proc = Proc([sys.executable, "-m", "backend.cli", *args], env, log)
        procs.append(proc)
        return proc

    yield start
    stop_all(procs)


def stop_all(procs: list[Proc]) -> None:
    """Stops ``procs`` all at once: a worker's warm shutdown takes seconds, so stopping in turn adds up."""
    for proc in procs:
        proc.send()
    for proc in procs:
        proc.wait_stopped()


def wait_http(url: str, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def wait_job(
    get: Callable[[str], dict],
    job_id: str,
    timeout: float = 120,
    until: tuple[str, ...] = ("done", "failed", "cancelled"),
) -> dict:
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = get(job_id)
        if job["status"] in until:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job.get('status')} after {timeout}s: {job}")


def start_service(spawn: Callable[..., Proc], env: dict[str, str], *, worker: str | None = "worker"):  # type: ignore[no-untyped-def]
    """Migrate, then start `colorlab serve` on a free port (and a worker named ``worker`` unless None);
    returns (base URL, server, worker) once both are ready."""
    spawn("migrate", env=env).popen.wait(timeout=60)
    port = free_port()
    server = spawn("serve", "--port", str(port), env=env)
    proc = spawn("worker", env=env, name=worker) if worker else None
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz")
    if proc is not None:
        proc.wait_for_log("ready", timeout=90)
    return base, server, proc


@dataclass
class Receiver:
    """A real HTTP server that records each POST and answers with the next of ``statuses`` (then 200)."""

    url: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(c["body"]) for c in self.calls]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free local port (its URL has a path and a query, as real ones do)."""
    got = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got.calls.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status = got.statuses.pop(0) if got.statuses else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/colorlab?token=t0k"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()
    server.server_close()
