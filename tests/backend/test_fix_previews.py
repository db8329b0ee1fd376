""" "Fix colours" previews (POST /jobs/{id}/rerun with fix_preview=true): out of the browser's history until
kept (POST /jobs/{id}/keep), deleted by the retention sweep if never kept, whatever became of their page —
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from backend import job_lifecycle as lifecycle
from backend.config import get_settings
from backend.db import session_scope
from backend.models import Job, utcnow
from tests.backend.test_api import png


def history_html(client: TestClient) -> str:
    return client.get("/history", headers={"Accept": "text/html"}).text


def test_a_preview_shows_in_the_history_only_once_kept(client: TestClient) -> None:
    first = client.post("/colorize", files={"image": ("a.png", png(), "image/png")}).json()["id"]
    r = client.post(f"/jobs/{first}/rerun", data={"options": '{"vividness": 0.9}', "fix_preview": "true"})
    assert r.status_code == 202, r.text
    preview = r.json()["id"]
    job = client.get(f"/jobs/{preview}").json()
    assert job["fix_preview"] is True and job["rerun_of"] == first and job["params"]["vividness"] == 0.9
    twice = client.post(f"/jobs/{first}/rerun", data={"fix_preview": ["true", "false"]})
    assert twice.status_code == 422 and "`fix_preview` came more than once" in twice.json()["detail"]
    history = history_html(client)
    assert first in history and preview not in history
    kept = client.post(f"/jobs/{preview}/keep")
    assert kept.status_code == 200 and kept.json()["fix_preview"] is False
    assert preview in history_html(client)
    assert client.post(f"/jobs/{preview}/keep").json()["fix_preview"] is False  # again: nothing changes
    assert client.post(f"/jobs/{first}/keep").json()["fix_preview"] is False  # not a preview: as it was
    assert client.post("/jobs/AAAAAAAAAAAAAAAAAAAAAA/keep").json()["detail"] == "no such job"
    assert client.post("/jobs/nope/keep").status_code == 404
    ordinary = client.post(f"/jobs/{first}/rerun", data={"options": '{"vividness": 0.1}'}).json()["id"]
    assert client.get(f"/jobs/{ordinary}").json()["fix_preview"] is False and ordinary in history_html(client)
    r = client.post(f"/jobs/{first}/rerun", data={"fix_preview": "perhaps"})
    assert r.status_code == 422 and "fix_preview" in str(r.json()["detail"])


def test_retention_deletes_previews_never_kept(client: TestClient) -> None:
    first = client.post("/colorize", files={"image": ("a.png", png(), "image/png")}).json()["id"]
    made = [
        client.post(f"/jobs/{first}/rerun", data={"fix_preview": "true", "vividness": str(v)}).json()["id"]
        for v in (0.1, 0.2, 0.3)
    ]
    old_unkept, old_kept, recent = made
    client.post(f"/jobs/{old_kept}/keep")
    day_ago = utcnow() - timedelta(hours=get_settings().preview_retain_hours + 1)
    with session_scope() as s:
        old = Job.id.in_([old_unkept, old_kept, first])
        s.execute(update(Job).where(old).values(created_at=day_ago, status="done", finished_at=day_ago))
    with session_scope() as s:
        freed = lifecycle.purge_expired(s, get_settings())
    assert freed.jobs == 1
    assert client.get(f"/jobs/{old_unkept}").status_code == 404  # its page is long gone
    for kept in (old_kept, recent, first):
        assert client.get(f"/jobs/{kept}").status_code == 200
