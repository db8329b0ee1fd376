"""The penetration test's findings, each against the real app (and, for the header limit, a real `colorlab
serve`): client addresses behind a `*` proxy, IPv6 clients counted per /64, rate-limit keys that cannot be
sprayed away, request heads over 64 KiB, zips with huge directories, a study's zip unpacked off the event
loop, one Secure rule for every cookie, the error page's way back, the "study deleted" notice and the dates
inside results.zip."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import socket
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, update
from starlette.requests import Request

from backend.config import Settings, get_settings
from backend.db import session_scope
from backend.models import Job
from tests.conftest import apply_settings, child_env, migrate, photo_bytes, start_service

ADMIN_PASSWORD = "a long test password"
SECRET_KEY = "security-audit-secret-key-0123456789abcdef"


def _app_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host: str = "testclient", **settings: object
) -> TestClient:
    apply_settings(
        monkeypatch,
        DATA_DIR=tmp_path / "var",
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        SECRET_KEY=SECRET_KEY,
        **settings,
    )
    migrate()
    from backend.main import create_app

    return TestClient(create_app(), client=(host, 50000))


def _other(client: TestClient, host: str, base_url: str = "http://testserver") -> TestClient:
    """Another device of the same app: its own address and cookie jar."""
    return TestClient(client.app, client=(host, 50000), base_url=base_url)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _log_in(client: TestClient, password: str = ADMIN_PASSWORD, **headers: str) -> httpx.Response:
    page = client.get("/admin/login", headers=headers)
    return client.post(
        "/admin/login",
        data={"password": password, "csrf_token": _csrf(page.text), "next": "/admin"},
        headers=headers,
        follow_redirects=False,
    )


def _upload(client: TestClient, **headers: str) -> int:
    files = {"image": ("a.jpg", photo_bytes(), "image/jpeg")}
    return client.post("/colorize", files=files, data={"method": "cnn"}, headers=headers).status_code


# -- 1. FORWARDED_ALLOW_IPS='*': the client is the hop the proxy wrote -------------------------------------


def test_behind_any_proxy_guesses_lock_out_only_the_guesser(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    proxy = _app_client(monkeypatch, tmp_path, host="10.0.0.2", FORWARDED_ALLOW_IPS="*", COLORIZE_RATE=2)
    with proxy:
        # An attacker behind the proxy sends its own X-Forwarded-For; the proxy appends the address it saw.
        for i in range(10):
            forwarded = {"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.66"}
            assert _log_in(proxy, "wrong", **forwarded).status_code == 401
        assert _log_in(proxy, "wrong", **{"X-Forwarded-For": "203.0.113.66"}).status_code == 429
        # The researcher, through the same proxy, is not locked out: the proxy is not the client.
        proxy.cookies.clear()
        assert _log_in(proxy, **{"X-Forwarded-For": "192.0.2.10"}).status_code == 303
        # Per-address limits are each client's own, not one for everybody behind the proxy.
        first = {"X-Forwarded-For": "192.0.2.10"}
        assert [_upload(proxy, **first) for _ in range(3)] == [202, 202, 429]
        assert _upload(proxy, **{"X-Forwarded-For": "6.6.6.6, 192.0.2.11"}) == 202


def _request(peer: str, forwarded: str | None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 1)})


def test_client_address_with_a_list_of_proxies_and_with_any(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backend.web import client_address

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    get_settings.cache_clear()
    assert client_address(_request("10.0.0.2", "6.6.6.6, 192.0.2.1, 10.1.1.1")) == "192.0.2.1"
    assert client_address(_request("10.0.0.2", "[2001:db8::5]:4711")) == "2001:db8::5"
    assert client_address(_request("10.0.0.2", "192.0.2.7:4711")) == "192.0.2.7"
    # Every hop one of our proxies: the chain was written by them, the left-most is the client (an office
    # inside the trusted network), not the proxy everybody shares.
    assert client_address(_request("10.0.0.2", "10.5.5.5, 10.1.1.1")) == "10.5.5.5"
    assert client_address(_request("10.0.0.2", None)) == "10.0.0.2"
    assert client_address(_request("::ffff:10.0.0.2", "192.0.2.9")) == "192.0.2.9"  # a dual-stack socket
    assert client_address(_request("192.0.2.50", "1.2.3.4")) == "192.0.2.50"  # not our proxy: ignored
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    get_settings.cache_clear()
    # Any peer is a proxy: only the hop it appended is believed, never what the client wrote before it.
    assert client_address(_request("10.0.0.2", "127.0.0.1, 192.0.2.1")) == "192.0.2.1"
    assert client_address(_request("10.0.0.2", " , ")) == "10.0.0.2"


# -- 2. IPv6 clients per /64; a full key table forgets the stalest keys -------------------------------------


def test_limit_keys_count_an_ipv6_client_per_64() -> None:
    from backend.web import limit_key

    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("::ffff:192.0.2.1") == limit_key("192.0.2.1") == "192.0.2.1"
    assert limit_key("testclient") == "testclient" and len(limit_key("x" * 500)) == 64


def test_an_ipv6_block_gets_one_login_budget_and_one_upload_rate(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from backend import auth

    first = _app_client(monkeypatch, tmp_path, host="2001:db8:1:2::1", COLORIZE_RATE=1)
    with first:
        for i in range(auth.LOGIN_FAILURES_ALLOWED):  # every guess from another address of the same /64
            assert _log_in(_other(first, f"2001:db8:1:2::{i + 100:x}"), "wrong").status_code == 401
        assert _log_in(_other(first, "2001:db8:1:2:dead::1")).status_code == 429
        assert _log_in(_other(first, "2001:db8:1:3::1")).status_code == 303  # another subscriber
        assert _upload(first) == 202
        assert _upload(_other(first, "2001:db8:1:2::2")) == 429
        assert _upload(_other(first, "2001:db8:9:9::1")) == 202


def test_spraying_new_keys_does_not_reset_other_clients_counts() -> None:
    from backend.ratelimit import SlidingWindow

    window = SlidingWindow(limit=1, window=3600, max_keys=3)
    assert window.allow("old") and window.allow("client")
    assert not window.allow("client")
    for sprayed in ("s1", "s2"):  # past max_keys: the key hit least recently goes, not every key
        assert window.allow(sprayed)
    assert not window.allow("client")  # still counted
    assert window.allow("old")  # forgotten: it had been hit least recently
    assert len(window._hits) == 3


# -- 3. request heads over 64 KiB: 431, and the connection closes ------------------------------------------


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(request)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
        return reply


def _noise_jpeg(side: int = 600) -> bytes:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (side, side), dtype=np.uint8)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_a_request_head_over_64_kib_gets_431(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base, _, _ = start_service(spawn, child_env(DATA_DIR=tmp_path / "srv"), worker=None)
    port = int(base.rsplit(":", 1)[1])
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 2_000_000 + b"\r\n\r\n"
    started = time.monotonic()
    reply = _exchange(port, huge)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert "65,536-byte limit" in json.loads(reply.split(b"\r\n\r\n", 1)[1])["detail"]
    assert time.monotonic() - started < 8  # refused at once, not after the 10 s header time-out
    # A head that never ends is refused as soon as it passes the limit too.
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nX-B: " + b"b" * 70_000)
        assert s.recv(100).startswith(b"HTTP/1.1 431 ")
    # Large but within the limit: served. So is a large body behind a small head, in one piece.
    fine = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: " + b"a" * 40_000 + b"\r\n\r\n"
    assert _exchange(port, fine).startswith(b"HTTP/1.1 200 ")
    photo = _noise_jpeg()
    assert len(photo) > 200_000
    r = httpx.post(
        f"{base}/colorize", files={"image": ("n.jpg", photo, "image/jpeg")}, data={"method": "cnn"}
    )
    assert r.status_code == 202, r.text
    # Keep-alive: a second request's oversized head on the same connection is refused too.
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):  # the whole first response, head and body
            first += s.recv(4096)
        assert first.startswith(b"HTTP/1.1 200 ")
        s.sendall(b"GET /healthz HTTP/1.1\r\nX-C: " + b"c" * 100_000 + b"\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 431 ")
    assert httpx.get(f"{base}/healthz").status_code == 200


# -- 4. zips: the entries are counted before zipfile lists them ---------------------------------------------


def raw_zip(count: int, *, declared: int | None = None, zip64: bool = False, comment: bytes = b"") -> bytes:
    """A valid zip of ``count`` empty ``N.jpg`` files, made fast; ``declared``: the count its end record
    claims (a lie when it differs); ``zip64``: with ZIP64 end records, as for more than 65,535 entries."""
    local = struct.Struct("<4s5H3L2H")
    central = struct.Struct("<4s4B4HL2L5H2L")
    parts, directory, offset = [], [], 0
    for i in range(count):
        name = f"{i}.jpg".encode()
        parts.append(local.pack(b"PK\x03\x04", 20, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0) + name)
        directory.append(
            central.pack(
                b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0, 0, 0, 0, 0, offset
            )
            + name
        )
        offset += local.size + len(name)
    cd = b"".join(directory)
    total = count if declared is None else declared
    tail = b""
    if zip64 or total >= 0xFFFF:
        zip64_at = offset + len(cd)
        tail = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, total, total, len(cd), offset)
        tail += struct.pack("<4sLQL", b"PK\x06\x07", 0, zip64_at, 1)
        short = 0xFFFF
    else:
        short = total
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, short, short, len(cd), offset, len(comment))
    return b"".join(parts) + cd + tail + end + comment


def test_zip_entries_are_counted_from_the_end_record_and_the_directory() -> None:
    from backend.uploads import zip_entries_beyond

    for made in (raw_zip(3), raw_zip(3, zip64=True), raw_zip(3, comment=b"a comment")):
        assert zipfile.ZipFile(io.BytesIO(made)).namelist() == ["0.jpg", "1.jpg", "2.jpg"]
        assert zip_entries_beyond(made, 3) is None
        assert zip_entries_beyond(made, 2) in ("3 entries", "more than 2 entries")
    assert zip_entries_beyond(raw_zip(70_000, zip64=True), 5000) == "70,000 entries"
    # The end record may lie: the directory itself is counted (zipfile lists all 6,000 whatever it says).
    lying = raw_zip(6000, declared=1)
    assert len(zipfile.ZipFile(io.BytesIO(lying)).infolist()) == 6000
    assert zip_entries_beyond(lying, 5000) == "more than 5,000 entries"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # as zip tools write them
        for i in range(10):
            z.writestr(f"folder/{i}.jpg", b"x" * i)
        z.comment = b"made by hand"
    assert zip_entries_beyond(buf.getvalue(), 10) is None
    assert zip_entries_beyond(buf.getvalue(), 9) == "10 entries"
    assert zip_entries_beyond(b"not a zip", 9) is None  # zipfile then says it is damaged


def _peak_bytes(call: Callable[[], Any]) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    try:
        call()
        raised = None
    except Exception as exc:  # the refusal itself is checked by the caller
        raised = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, raised


@pytest.fixture(scope="module")
def hundred_thousand_entries() -> bytes:
    return raw_zip(100_000)


def test_a_zip_of_100000_entries_is_refused_before_it_is_listed(
    monkeypatch, tmp_path, hundred_thousand_entries
) -> None:  # type: ignore[no-untyped-def]
    from backend.batch_uploads import zip_members
    from backend.errors import UserError
    from backend.study.photos import from_zip

    settings = Settings()
    for unpack in (lambda: from_zip(hundred_thousand_entries, settings),
                   lambda: zip_members("big.zip", hundred_thousand_entries, settings)):  # fmt: skip
        peak, raised = _peak_bytes(unpack)
        assert peak < 2_000_000, f"refusing it took {peak:,} bytes (listing it: ~50 MB)"
        assert isinstance(raised, UserError) and raised.status_code == 413, raised
        assert "100,000 entries" in raised.detail
    with _app_client(monkeypatch, tmp_path) as c:
        files = {"images": ("big.zip", hundred_thousand_entries, "application/zip")}
        r = c.post("/batches", files=files, data={"method": "cnn"})
        assert r.status_code == 413
        assert r.json()["detail"] == "the zip holds 100,000 entries; a batch takes at most 200 photos"
        # A zip within the limit still goes through the member checks as before.
        r = c.post("/batches", files={"images": ("few.zip", raw_zip(3), "application/zip")})
        assert r.status_code == 422 and "none of the 3 files is a usable photo" in r.json()["detail"]


# -- 5. a study's zip is unpacked off the event loop -------------------------------------------------------


def _slow_zip() -> bytes:
    """Photos' worth of bytes that take a while to unpack (bzip2 of low-entropy data: ~30 MB/s)."""
    rng = np.random.default_rng(2)
    block = rng.integers(0, 2, 400_000, dtype=np.uint8).tobytes() * 12
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_BZIP2) as z:
        for i in range(5):
            z.writestr(f"photo-{i}.jpg", block)
    return buf.getvalue()


def test_a_study_zip_does_not_stall_the_event_loop(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    archive = _slow_zip()
    with _app_client(monkeypatch, tmp_path) as c:
        assert _log_in(c).status_code == 303
        token = _csrf(c.get("/admin/studies/new").text)
        gaps: list[float] = []
        stop = False

        async def ticker() -> None:  # runs on the app's event loop
            last = time.monotonic()
            while not stop:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        assert c.portal is not None
        ticking = c.portal.start_task_soon(ticker)
        started = time.monotonic()
        r = c.post(
            "/admin/studies",
            data={"csrf_token": token, "title": "Slow", "methods": ["cnn"]},
            files={"archive": ("photos.zip", archive, "application/zip")},
        )
        took = time.monotonic() - started
        stop = True
        ticking.result(timeout=10)
        assert r.status_code in (400, 415, 422), r.text[:300]  # its "photos" are not images
        assert took > 0.5, f"the unpacking took only {took:.2f} s: the test shows nothing"
        assert max(gaps) < 0.3, f"the event loop stalled for {max(gaps):.2f} s of {took:.2f} s"


# -- 6. every cookie Secure by one rule ---------------------------------------------------------------------


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    return {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}


@pytest.mark.parametrize(
    ("environment", "public_url", "secure"),
    [
        ("production", "http://colorlab.example.org", True),  # production: Secure whatever PUBLIC_URL says
        ("development", "https://colorlab.example.org", True),
        ("development", "http://127.0.0.1:8000", False),
    ],
)
def test_every_cookie_follows_one_secure_rule(monkeypatch, tmp_path, environment, public_url, secure) -> None:  # type: ignore[no-untyped-def]
    from starlette.responses import Response

    from backend.routes.admin import _note_deletion
    from backend.study.models import Participant, Study
    from backend.study.participant_cookie import set_participant_cookie

    c = _app_client(monkeypatch, tmp_path, ENVIRONMENT=environment, PUBLIC_URL=public_url)
    https = _other(c, "testclient", base_url="https://testserver")  # so that Secure cookies are sent back
    page = https.get("/admin/login")
    cookies = _set_cookies(page)
    r = https.post(
        "/admin/login",
        data={"password": ADMIN_PASSWORD, "csrf_token": _csrf(page.text), "next": "/admin"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    cookies.update(_set_cookies(r))
    index = https.get("/admin")
    logout = https.post("/admin/logout", data={"csrf_token": _csrf(index.text)}, follow_redirects=False)
    assert logout.status_code == 303
    response = Response()
    set_participant_cookie(
        response, get_settings(), Study(id="s1", slug="study"), Participant(id="p1"), "secret"
    )
    cookies["colorlab_participant"] = response.headers["set-cookie"]
    response = Response()
    _note_deletion(response, get_settings(), "study")
    cookies["colorlab_deleted_study"] = response.headers["set-cookie"]
    logged_out = _set_cookies(logout)["colorlab_admin"]
    names = {"colorlab_client", "colorlab_login_csrf", "colorlab_admin", "colorlab_participant"}
    names.add("colorlab_deleted_study")
    assert names <= set(cookies), cookies
    for name in names:
        assert ("; secure" in cookies[name].lower()) is secure, cookies[name]
    assert ("; secure" in logged_out.lower()) is secure, logged_out


# -- 7. the error page's way back stays on the site ---------------------------------------------------------


def test_the_error_pages_link_back_never_leaves_the_site(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _app_client(monkeypatch, tmp_path) as c:
        for referer in (
            "http://testserver//evil.example/x",
            "http://testserver/\\evil.example/x",
            "http://testserver/%09/ok/\\evil.example",
            "http://evil.example/x",
        ):
            page = c.post("/colorize", headers={"accept": "text/html", "referer": referer})
            assert page.status_code == 422 and "text/html" in page.headers["content-type"]
            assert "evil.example" not in page.text and "Back to the page" not in page.text, referer
        page = c.post(
            "/colorize", headers={"accept": "text/html", "referer": "http://testserver/compare?x=1"}
        )
        assert 'href="/compare?x=1">Back to the page' in page.text


# -- 8. the "study deleted" notice cannot be made up ---------------------------------------------------------


def test_the_deleted_notice_needs_a_deletion(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from starlette.responses import Response

    from backend.routes.admin import DELETED_COOKIE, _note_deletion
    from backend.study.models import Study

    def noted(slug: str, settings: Settings) -> str:
        response = Response()
        _note_deletion(response, settings, slug)
        return response.headers["set-cookie"].split(";")[0].split("=", 1)[1]

    with _app_client(monkeypatch, tmp_path) as c:
        assert _log_in(c).status_code == 303
        page = c.get("/admin?deleted=main-study")  # a link anybody can send
        assert page.status_code == 200 and "was deleted" not in page.text
        another_key = Settings(secret_key="another-secret-key-of-at-least-32-chars", data_dir=tmp_path)
        for forged in ("main-study", noted("main-study", another_key), noted("other-study", get_settings())):
            c.cookies.set(DELETED_COOKIE, forged, path="/admin")
            assert "was deleted" not in c.get("/admin?deleted=main-study").text, forged
        # This browser deleted it a moment ago: said, while no study has that slug.
        c.cookies.set(DELETED_COOKIE, noted("main-study", get_settings()), path="/admin")
        assert "The study <code>main-study</code> was deleted" in c.get("/admin?deleted=main-study").text
        with session_scope() as s:
            s.add(Study(slug="main-study", title="Made again"))
        assert "was deleted" not in c.get("/admin?deleted=main-study").text


# -- 9. the entries of results.zip are dated when their jobs finished ---------------------------------------


@pytest.fixture
def finished_batch(monkeypatch, tmp_path) -> Iterator[tuple[TestClient, str, list[datetime]]]:  # type: ignore[no-untyped-def]
    from worker.runner import Runner

    with _app_client(monkeypatch, tmp_path) as c:
        files = [("images", (f"p{i}.jpg", photo_bytes(f"00{i + 1}_"), "image/jpeg")) for i in range(2)]
        r = c.post("/batches", files=files, data={"method": "cnn"})
        assert r.status_code == 202, r.text
        batch_id = r.json()["id"]
        runner = Runner(get_settings())
        with session_scope() as s:
            ids = s.scalars(
                select(Job.id).where(Job.batch_id == batch_id).order_by(Job.created_at, Job.id)
            ).all()
        for job_id in ids:
            runner.run(job_id)
        moments = [
            datetime(2024, 6, 1, 12, 34, 56, tzinfo=UTC),
            datetime(2025, 1, 31, 23, 59, 58, tzinfo=UTC),
        ]
        with session_scope() as s:
            for job_id, moment in zip(ids, moments, strict=True):
                s.execute(update(Job).where(Job.id == job_id).values(finished_at=moment))
        yield c, batch_id, moments


def _timestamp_of(info: zipfile.ZipInfo) -> int:
    header, size, flags, seconds = struct.unpack("<HHBl", info.extra[:9])
    assert header == 0x5455 and size == 5 and flags == 1
    return int(seconds)


def test_results_zip_entries_are_dated_when_their_jobs_finished(finished_batch) -> None:  # type: ignore[no-untyped-def]
    c, batch_id, moments = finished_batch
    for url in (f"/batches/{batch_id}/results.zip", f"/results.zip?batch={batch_id}&format=jpg"):
        first = c.get(url)
        assert first.status_code == 200, first.text
        infos = zipfile.ZipFile(io.BytesIO(first.content)).infolist()
        assert [_timestamp_of(i) for i in infos] == [int(m.timestamp()) for m in moments]
        assert [i.date_time for i in infos] == [time.localtime(m.timestamp())[:6] for m in moments]
        assert c.get(url).content == first.content  # the same jobs, the same zip
