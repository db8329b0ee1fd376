"""Capacity and abuse against real `colorlab serve` processes: a crowd gets answers (no 5xx), decode cost is
bounded, stored renditions are served (never a second decode), and the client address cannot be chosen by a
header."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import child_env, free_port, photo_bytes, serve_refused, start_service, wait_http
from tests.reliability.redteam import BOMBS, phone_photo

# serial: run alone after the parallel part of `make test` (PostgreSQL restarts, crowds, timing)
pytestmark = [pytest.mark.slow, pytest.mark.serial]


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}")


def reset_peak(pid: int) -> None:
    """Start VmHWM (peak resident memory) afresh for the server process we started."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def server_env(
    database: str, tmp_path: Path, request: pytest.FixtureRequest, **extra: object
) -> dict[str, str]:
    values: dict[str, object] = {"DATA_DIR": tmp_path / "srv", **extra}
    if database == "postgres":
        values["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return child_env(**values)


async def crowd(base: str, paths: list[str], timeout: float = 180) -> tuple[Counter[int], float]:
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=len(paths))
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as http:
        started = time.monotonic()

        async def one(path: str) -> int:
            try:
                return (await http.get(path)).status_code
            except httpx.HTTPError:
                return -1  # a client time-out or reset counts as a failure too

        codes = await asyncio.gather(*(one(p) for p in paths))
        return Counter(codes), time.monotonic() - started


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_200_concurrent_polls_and_image_requests_get_no_5xx(spawn, tmp_path, request, database) -> None:  # type: ignore[no-untyped-def]
    base, _, _ = start_service(spawn, server_env(database, tmp_path, request), worker=None)
    http = httpx.Client(base_url=base, timeout=30)
    r = http.post(
        "/colorize", files={"image": ("a.jpg", photo_bytes(), "image/jpeg")}, data={"method": "cnn"}
    )
    assert r.status_code == 202, r.text
    job = r.json()["id"]

    polls, took = asyncio.run(crowd(base, [f"/jobs/{job}"] * 200))
    assert polls == Counter({200: 200}), (polls, took)
    pages = [
        f"/jobs/{job}/thumb.jpg?of=input",
        f"/jobs/{job}/input.png",
        f"/jobs/{job}/view",
        "/history",
        "/healthz",
    ]
    mixed, took = asyncio.run(crowd(base, pages * 40))
    assert mixed == Counter({200: 200}), (mixed, took)
    # Still answering at once afterwards (the red team saw /healthz take 60 s after a crowd).
    started = time.monotonic()
    assert http.get("/healthz").status_code == 200 and time.monotonic() - started < 5


def test_red_team_uploads_are_refused_before_decoding_and_photos_go_through(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = child_env(DATA_DIR=tmp_path / "srv", COLORIZE_RATE=1000)
    base, server, _ = start_service(spawn, env, worker=None)
    pid = server.popen.pid
    http = httpx.Client(base_url=base, timeout=120)
    before_kb = memory_kb(pid, "VmRSS")
    reset_peak(pid)
    for name, (make, ctype) in BOMBS.items():
        started = time.monotonic()
        r = http.post("/colorize", files={"image": (name, make(), ctype)}, data={"method": "cnn"})
        took = time.monotonic() - started
        assert r.status_code in (413, 415), (name, r.status_code, r.text)
        assert took < 10, (name, took)  # the red team measured 1-24 s of CPU per decode
    peak_mb = (memory_kb(pid, "VmHWM") - before_kb) / 1024
    assert peak_mb < 200, f"refusing the bombs raised the peak by {peak_mb:.0f} MB"

    # A 24 MP colour phone photo and a 40 MP gray scan go through.
    phone = phone_photo(6000, 4000)
    scan = phone_photo(8000, 5000, gray=True)
    ids = []
    for name, data in (("phone.jpg", phone), ("scan.jpg", scan)):
        r = http.post("/colorize", files={"image": (name, data, "image/jpeg")}, data={"method": "cnn"})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    assert http.get(f"/jobs/{ids[0]}").json()["width"] == 6000

    # Four parallel GETs of each rendition of the 40 MP input are served from the stored PNGs: the peak
    # memory barely moves (it grew by 4 GB when every GET decoded the upload again).
    settled_kb = memory_kb(pid, "VmRSS")
    reset_peak(pid)
    paths = [f"/jobs/{ids[1]}/input.png", f"/jobs/{ids[1]}/original.png"] * 2 + [
        f"/jobs/{ids[0]}/original.png"
    ] * 2
    codes, took = asyncio.run(crowd(base, paths))
    assert codes == Counter({200: len(paths)}), codes
    grew_mb = (memory_kb(pid, "VmHWM") - settled_kb) / 1024
    assert grew_mb < 400, f"serving 6 stored renditions raised the peak by {grew_mb:.0f} MB"
    r = http.get(f"/jobs/{ids[0]}/original.png")
    assert r.headers["cache-control"].endswith("immutable") and r.headers["etag"]
    again = http.get(f"/jobs/{ids[0]}/original.png", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_forwarded_for_is_believed_only_from_forwarded_allow_ips(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    upload = {"image": ("a.jpg", photo_bytes(), "image/jpeg")}
    env = child_env(DATA_DIR=tmp_path / "a", COLORIZE_RATE=3)
    base, _, _ = start_service(spawn, env, worker=None)
    codes = [
        httpx.post(
            f"{base}/colorize",
            files=upload,
            data={"method": "cnn"},
            headers={"X-Forwarded-For": f"10.0.0.{i}"},
        ).status_code
        for i in range(6)
    ]
    assert codes == [202] * 3 + [429] * 3  # a rotating header changes nothing: the limit is per TCP peer

    env = child_env(DATA_DIR=tmp_path / "b", COLORIZE_RATE=3, PHOTO_BUDGET=3, FORWARDED_ALLOW_IPS="127.0.0.1")
    base, _, _ = start_service(spawn, env, worker=None)

    def post(forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        return httpx.post(
            f"{base}/colorize", files=upload, data={"method": "cnn"}, headers=headers
        ).status_code

    assert [post("10.0.0.1") for _ in range(4)] == [202, 202, 202, 429]
    # Behind our proxy, the client's own X-Forwarded-For is only a prefix: the proxy appends the real one.
    assert [post(f"6.6.6.{i}, 10.0.0.1") for i in range(2)] == [429, 429]
    assert post("10.0.0.2") == 202  # its own rate and its own photo budget (10.0.0.1 spent all of its own)


def test_slow_headers_and_stalled_bodies_are_cut_off(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = child_env(DATA_DIR=tmp_path / "srv", HEADER_READ_TIMEOUT=2, BODY_READ_TIMEOUT=2)
    base, _, _ = start_service(spawn, env, worker=None)
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        started = time.monotonic()
        assert s.recv(100) == b""  # closed by the server
        assert 1 < time.monotonic() - started < 10
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(
            b"POST /colorize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 100000\r\n\r\n--b\r\n"
        )
        started = time.monotonic()
        reply = s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert time.monotonic() - started < 10
    assert httpx.get(f"{base}/healthz").status_code == 200


def test_production_hides_the_docs_and_marks_cookies_secure(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    production = {"ENVIRONMENT": "production", "ADMIN_PASSWORD": "a-long-password", "SECRET_KEY": "k" * 40}
    base, _, _ = start_service(spawn, child_env(DATA_DIR=tmp_path / "p", **production), worker=None)
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert httpx.get(base + path).status_code == 404
    page = httpx.get(base + "/")
    assert "Secure" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]
    assert 'href="/docs"' not in page.text  # the footer links no page that is not there

    env = child_env(DATA_DIR=tmp_path / "q", API_DOCS="true", **production)
    base, _, _ = start_service(spawn, env, worker=None)
    assert httpx.get(base + "/openapi.json").status_code == 200
    assert 'href="/docs">REST API</a>' in httpx.get(base + "/").text


def _listeners(port: int) -> set[int]:
    """Pids of the processes listening on ``port``."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"( sport = :{port} )"], capture_output=True, text=True, check=True
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


def test_web_workers_share_the_port_evenly_and_one_that_dies_comes_back(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`serve --workers 2`: each worker listens on the port itself (SO_REUSEPORT), so the kernel spreads new
    connections over both (uvicorn's shared socket gave one process most of a burst); a worker killed with
    -9 is restarted by the supervisor while the other keeps answering."""
    env = child_env(DATA_DIR=tmp_path / "srv")
    spawn("migrate", env=env).popen.wait(timeout=60)
    port = free_port()
    spawn("serve", "--port", str(port), "--workers", "2", env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while len(_listeners(port)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = _listeners(port)
    assert len(workers) == 2, workers
    wait_http(f"{base}/healthz")

    sockets = []
    for _ in range(200):  # kept-alive connections, each answered by the worker the kernel chose
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        sockets.append(s)
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True
    ).stdout
    held = Counter(int(pid) for pid in re.findall(r"pid=(\d+)", out))
    for s in sockets:
        s.close()
    # The kernel picks a listener by a hash of the connection's addresses: binomial(200, ½) per worker (300
    # bursts of 40 measured here matched it). Below 70 (35 %) happens once in 72,000 runs; one process taking
    # most connections, as with a shared socket, fails. (40 connections and 10 failed once in 1,470 runs.)
    assert set(held) == workers and min(held.values()) >= 70, held

    victim = sorted(workers)[0]
    os.kill(victim, signal.SIGKILL)
    codes = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        codes.append(httpx.get(f"{base}/healthz", timeout=5).status_code)
        now = _listeners(port)
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.2)
    after = _listeners(port)
    assert len(after) == 2 and victim not in after, "the killed worker was not restarted"
    assert set(codes) == {200}  # the other worker answered meanwhile


def test_a_pool_smaller_than_the_request_threads_refuses_to_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every request thread must find a database connection: the web threads, the participants' threads and
    their answers' threads (8 + 3 + 3 by default). A pool of 8 + 5 is refused at start, with the sum named."""
    stderr = serve_refused(child_env(DATA_DIR=tmp_path, DB_POOL_SIZE="8", DB_MAX_OVERFLOW="5"))
    assert "WEB_THREADS + 2 × STUDY_THREADS (14)" in stderr
