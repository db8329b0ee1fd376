"""A shared link views: only the browser or program that made a job or comparison may cancel, delete or keep
it, and only it sees the batch, comparison, earlier job and webhook the job belongs to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from backend.db import session_scope
from backend.models import Job
from tests.conftest import photo_bytes

IMAGE = {"image": ("photo.jpg", photo_bytes(), "image/jpeg")}


@contextmanager
def as_stranger(client) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The same server through a browser that has never been there (no `colorlab_client` cookie)."""
    kept = dict(client.cookies)
    client.cookies.clear()
    try:
        yield
    finally:
        client.cookies.clear()
        client.cookies.update(kept)


def test_a_shared_job_can_be_viewed_but_not_cancelled_deleted_or_kept(client) -> None:  # type: ignore[no-untyped-def]
    hook = "https://archive.example.org/hooks/colorlab?token=s3cr3t"
    made = client.post("/colorize", files=IMAGE, data={"method": "cnn", "webhook": hook})
    assert made.status_code == 202, made.text
    job_id = made.json()["id"]
    mine = client.get(f"/jobs/{job_id}").json()
    assert mine["owned"] is True and "s3cr3t" in mine["webhook"]["url"]

    with as_stranger(client):
        seen = client.get(f"/jobs/{job_id}")
        assert seen.status_code == 200 and seen.json()["owned"] is False
        assert seen.json()["webhook"] is None  # its URL may carry the receiver's token
        assert client.get(f"/jobs/{job_id}/input.png").status_code == 200
        assert client.get(f"/jobs/{job_id}/view").status_code == 200
        for refused in (client.delete(f"/jobs/{job_id}"), client.post(f"/jobs/{job_id}/cancel")):
            assert refused.status_code == 403, refused.text
            assert "only the browser or program that made this job" in refused.json()["detail"]
        assert client.post(f"/jobs/{job_id}/keep").status_code == 403
        # ... and colorizing the photo again makes a job of the stranger's own, which it may delete
        again = client.post(f"/jobs/{job_id}/rerun", data={"method": "gan"})
        assert again.status_code == 202, again.text
        assert client.get(f"/jobs/{again.json()['id']}").json()["owned"] is True
        assert client.post(f"/jobs/{again.json()['id']}/cancel").status_code == 200  # no worker here
    with session_scope() as s:
        assert s.get(Job, job_id) is not None  # nothing changed

    assert client.post(f"/jobs/{job_id}/cancel").json()["status"] == "cancelled"  # its maker cancels it


def test_a_shared_job_does_not_show_its_comparison(client) -> None:  # type: ignore[no-untyped-def]
    made = client.post("/compare", files=IMAGE)
    assert made.status_code == 202, made.text
    group = made.json()
    first = group["jobs"][0]["id"] if isinstance(group["jobs"][0], dict) else group["jobs"][0]
    assert client.get(f"/jobs/{first}").json()["group_id"] == group["id"]
    assert f"/compare/{group['id']}/view" in client.get(f"/jobs/{first}/view").text
    with as_stranger(client):
        job = client.get(f"/jobs/{first}").json()
        assert job["owned"] is False and job["group_id"] is None
        assert f"/compare/{group['id']}/view" not in client.get(f"/jobs/{first}/view").text
        comparison = client.get(group["status_url"]).json()
        assert comparison["owned"] is False and len(comparison["jobs"]) == len(group["jobs"])
        assert client.delete(group["status_url"]).status_code == 403
    assert client.get(group["status_url"]).json()["owned"] is True
    assert client.delete(group["status_url"]).status_code == 204


def test_a_shared_batch_can_be_viewed_but_not_deleted(client) -> None:  # type: ignore[no-untyped-def]
    photos = [("images", (f"p{i}.jpg", photo_bytes(), "image/jpeg")) for i in range(2)]
    hook = "https://archive.example.org/hooks/colorlab?token=s3cr3t"
    made = client.post("/batches", files=photos, data={"method": "cnn", "webhook": hook})
    assert made.status_code == 202, made.text
    url = made.json()["status_url"]
    mine = client.get(url).json()
    assert mine["owned"] is True and "s3cr3t" in mine["webhook"]["url"]
    first = mine["items"][0]["job_id"]
    assert client.get(f"/jobs/{first}").json()["batch_id"] == made.json()["id"]
    with as_stranger(client):
        seen = client.get(url).json()
        assert seen["owned"] is False and seen["webhook"] is None and len(seen["items"]) == 2
        assert client.get(f"/jobs/{first}").json()["batch_id"] is None
        for refused in (client.delete(url), client.post(url + "/cancel")):
            assert refused.status_code == 403 and "made this batch" in refused.json()["detail"]
        assert client.delete(f"/jobs/{first}").status_code == 403
    assert client.get(url).status_code == 200
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
