"""Security rules: secrets required in production, headers, content types, no listing of other people's jobs,
and no participant id logged with an IP address."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import child_env, free_port, photo_bytes, serve_refused, wait_http


def test_production_refuses_to_start_without_secrets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for extra, words in (
        ({}, "ADMIN_PASSWORD and SECRET_KEY"),
        ({"ADMIN_PASSWORD": "pw", "SECRET_KEY": "short"}, "SECRET_KEY must be at least"),
    ):
        assert words in serve_refused(child_env(ENVIRONMENT="production", DATA_DIR=tmp_path, **extra))


def test_security_headers_and_content_types(client) -> None:  # type: ignore[no-untyped-def]
    job = client.post(
        "/colorize", files={"image": ("p.jpg", photo_bytes(), "image/jpeg")}, data={"method": "cnn"}
    ).json()
    for path, ctype in (
        ("/", "text/html"),
        ("/history", "text/html"),
        ("/methods", "application/json"),
        ("/static/app.css", "text/css"),
        (f"/jobs/{job['id']}", "application/json"),
        (f"/jobs/{job['id']}/input.png", "image/png"),
        ("/admin", None),
    ):
        r = client.get(path, follow_redirects=False)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert "script-src 'self'" in r.headers["content-security-policy"], path
        if ctype:
            assert r.status_code == 200 and r.headers["content-type"].startswith(ctype), path
    assert client.get("/admin", follow_redirects=False).status_code in (302, 303, 401, 403)


def test_no_endpoint_lists_other_peoples_jobs(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/colorize", files={"image": ("p.jpg", photo_bytes(), "image/jpeg")}, data={"method": "cnn"})
    assert client.get("/jobs").status_code in (404, 405)
    client.cookies.clear()  # another browser
    assert "/jobs/" not in client.get("/history").text.split("<main", 1)[-1].split("</main>", 1)[0]


@pytest.mark.slow
def test_access_log_keeps_no_ip_with_participant_ids(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = child_env(DATA_DIR=tmp_path / "var", PORT=port)
    spawn("migrate", env=env).popen.wait(timeout=60)
    server = spawn("serve", env=env)
    wait_http(f"http://127.0.0.1:{port}/healthz")
    for path in (
        "/study/some-study?PROLIFIC_PID=secretpid123&STUDY_ID=s&SESSION_ID=x",
        "/",
        "/study/some-study?participant=secretpid456",
    ):
        httpx.get(f"http://127.0.0.1:{port}{path}")
    server.stop()
    log = server.log()
    assert "secretpid" not in log
    assert "127.0.0.1:" not in log.replace(f"http://127.0.0.1:{port}", "")
