"""Hostile uploads against a real `colorlab serve` process on PostgreSQL: every one gets a clear 4xx or a
correct result, nothing is stored for a refusal, no 5xx, and the web process does not bloat."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import child_env, start_service
from tests.reliability.corpus import cases

pytestmark = pytest.mark.slow
MAX_UPLOAD = 2_000_000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def raw_request(port: int, head: bytes, body: bytes, *, close_write: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


@pytest.fixture
def server(spawn, postgres_url, redis_url):  # type: ignore[no-untyped-def]
    env = child_env(
        DATABASE_URL=postgres_url,
        CELERY_BROKER_URL=redis_url,
        MAX_UPLOAD_BYTES=MAX_UPLOAD,
        COLORIZE_RATE=100000,
        PHOTO_BUDGET=100000,
    )
    base, proc, _ = start_service(spawn, env, worker=None)
    port = int(base.rsplit(":", 1)[1])
    engine = sa.create_engine(postgres_url)
    yield port, proc, engine
    engine.dispose()


def row_counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as c:
        return (
            c.execute(sa.text("select count(*) from jobs")).scalar_one(),
            c.execute(sa.text("select count(*) from images")).scalar_one(),
        )


def test_hostile_upload_corpus(server) -> None:  # type: ignore[no-untyped-def]
    port, proc, engine = server
    corpus = cases(MAX_UPLOAD)
    assert len(corpus) >= 30
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    http.get("/methods")
    rss_before = rss_mb(proc.popen.pid)
    failures = []
    for rnd in range(3):  # three passes: memory must not grow with repetition
        for case in corpus:
            before = row_counts(engine)
            r = http.post("/colorize", files=case.files or None, data=case.data)
            body = r.json()
            if r.status_code != case.status:
                failures.append(f"{case.name}: {r.status_code} (expected {case.status}) {body}")
                continue
            if r.status_code >= 400:
                assert isinstance(body["detail"], str) and body["detail"], case.name
                if row_counts(engine) != before:
                    failures.append(f"{case.name}: rows changed on a refusal")
            elif rnd == 0 and case.expect_size:
                job = http.get(f"/jobs/{body['id']}").json()
                if (job["width"], job["height"]) != case.expect_size:
                    failures.append(
                        f"{case.name}: stored {job['width']}x{job['height']}, expected {case.expect_size}"
                    )
    assert not failures, "\n".join(failures)
    growth = rss_mb(proc.popen.pid) - rss_before
    assert growth < 200, f"web process RSS grew by {growth:.0f} MB"
    # Display names are sanitised; no path from a user ever reaches the file system.
    with engine.connect() as c:
        names = {n for (n,) in c.execute(sa.text("select filename from images where filename is not null"))}
    assert "passwd" in names and not any("/" in n or ".." in n for n in names)


def test_lying_and_oversized_requests(server) -> None:  # type: ignore[no-untyped-def]
    port, _proc, engine = server
    before = row_counts(engine)
    boundary = b"xyzzy"
    part = b'--xyzzy\r\nContent-Disposition: form-data; name="method"\r\n\r\ncnn\r\n--xyzzy--\r\n'

    def head(length: int | str, extra: bytes = b"") -> bytes:
        return (
            b"POST /colorize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary="
            + boundary
            + b"\r\nContent-Length: "
            + str(length).encode()
            + b"\r\n"
            + extra
            + b"\r\n"
        )

    # Declares a body far larger than the limit: refused before it is read.
    answer = raw_request(port, head(10**12), b"")
    assert answer.startswith(b"HTTP/1.1 413")
    # Declares more than it sends, then goes away: nothing stored, the server carries on.
    raw_request(port, head(len(part) + 5000), part, close_write=True)
    # Declares less than it sends: the body is cut short, which is a malformed form, not a crash.
    answer = raw_request(port, head(len(part) // 2), part)
    assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 422"), answer[:200]
    # Not a number.
    answer = raw_request(port, head("lots"), part, close_write=True)
    assert answer.startswith(b"HTTP/1.1 400")
    # Chunked body over the limit: refused while streaming.
    payload = (
        b'--xyzzy\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + b"\x89PNG" + b"0" * 6_000_000 + b"\r\n--xyzzy--\r\n"
    )
    pieces = [payload[i : i + 1_000_000] for i in range(0, len(payload), 1_000_000)]
    body = b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
    answer = raw_request(
        port,
        b"POST /colorize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=xyzzy\r\n\r\n",
        body,
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    time.sleep(0.5)
    assert row_counts(engine) == before
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    assert http.get("/healthz").status_code == 200
    for path in (
        "/jobs/..%2F..%2Fetc%2Fpasswd",
        "/static/..%2Fbackend%2Fconfig.py",
        "/static/../../etc/passwd",
        "/jobs/%00/result.png",
    ):
        r = http.get(path)
        assert r.status_code == 404, (path, r.status_code)
    assert http.get("/jobs/x/result.png").headers["content-type"].startswith("application/json")
