"""A job made while another client deletes what it builds on: a photo shared by identical uploads, or the
job being re-run. The new job either gets a photo of its own or is refused as gone: never a 500, never a
job pointing at a deleted image."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend import job_lifecycle as lifecycle
from backend.db import session_scope
from backend.errors import UserError
from backend.models import Image as ImageRow
from backend.models import Job
from tests.conftest import keep_for_a_study


def png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (64, 48), value).save(buf, format="PNG")
    return buf.getvalue()


def upload(client, data: bytes) -> str:  # type: ignore[no-untyped-def]
    r = client.post("/colorize", files={"image": ("a.png", data, "image/png")}, data={"method": "cnn"})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def finished(job_id: str) -> None:
    with session_scope() as s:  # as the worker would leave it (no worker runs here)
        row = s.get(Job, job_id)
        assert row is not None
        row.status = "failed"


def delete_once(monkeypatch: pytest.MonkeyPatch, name: str, job_id: str) -> None:
    """Delete ``job_id`` (another client's DELETE) right after the next call of ``lifecycle.<name>``."""
    real: Callable[..., Any] = getattr(lifecycle, name)
    done: list[bool] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if not done:
            done.append(True)
            with session_scope() as other:
                assert lifecycle.delete_finished(other, job_id) is not None
        return out

    monkeypatch.setattr(lifecycle, name, wrapped)


def test_an_identical_upload_survives_the_other_clients_delete(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = png(77)
    first = upload(client, data)
    finished(first)
    # The second upload finds the first one's image; its only job is deleted before the new job is saved.
    delete_once(monkeypatch, "store_image", first)
    second = upload(client, data)
    assert client.get(f"/jobs/{first}").status_code == 404
    assert client.get(f"/jobs/{second}/original.png").status_code == 200
    with session_scope() as s:
        image_id = s.scalar(select(Job.input_image_id).where(Job.id == second))
        assert image_id is not None and s.get(ImageRow, image_id) is not None


def test_a_rerun_of_a_job_deleted_meanwhile_is_a_404(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = upload(client, png(78))
    finished(first)
    delete_once(monkeypatch, "rerun", first)  # the job is loaded, then deleted before the re-run is saved
    r = client.post(f"/jobs/{first}/rerun")
    assert r.status_code == 404, r.text
    with session_scope() as s:
        assert s.scalars(select(Job)).all() == []
        assert s.scalars(select(ImageRow)).all() == []


def test_an_unfinished_study_stimulus_is_not_cancelled_through_the_job_api(client) -> None:  # type: ignore[no-untyped-def]
    job_id = upload(client, png(79))
    keep_for_a_study(job_id)
    for r in (client.delete(f"/jobs/{job_id}"), client.post(f"/jobs/{job_id}/cancel")):
        assert r.status_code == 409 and "user study" in r.json()["detail"]
    assert client.get(f"/jobs/{job_id}").json()["status"] == "queued"


def test_a_deletion_that_keeps_losing_its_race_is_refused_not_a_500(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    job_id = upload(client, png(79))
    finished(job_id)
    with session_scope() as s:
        tries: list[int] = []

        def lost_race() -> None:  # an image got a new user before each commit
            tries.append(1)
            raise IntegrityError("commit", None, Exception("foreign key"))

        with monkeypatch.context() as patched, pytest.raises(UserError) as refused:
            patched.setattr(s, "commit", lost_race)
            lifecycle.commit_deletion(s, lambda: lifecycle.delete_jobs(s, [job_id]), "delete job")
        assert refused.value.status_code == 409 and "try again" in str(refused.value.detail)
        assert len(tries) == 3
    assert client.get(f"/jobs/{job_id}").status_code == 200  # nothing was deleted


def test_a_job_deleted_while_it_is_being_cancelled_is_a_404_not_a_500(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A page cancels a job as another tab deletes it: when the DELETE lands between the cancel and its
    reading back, the cancel says the job is gone (reading it back used to fail: a 500)."""
    job_id = upload(client, png(80))
    delete_once(monkeypatch, "cancel", job_id)  # the other client deletes it right after this one cancels
    r = client.post(f"/jobs/{job_id}/cancel")
    assert r.status_code == 404 and "deleted" in r.json()["detail"], r.text
    assert client.get(f"/jobs/{job_id}").status_code == 404
    again = upload(client, png(81))
    delete_once(monkeypatch, "cancel", again)  # a DELETE that finds it gone once cancelled: 404 as well
    r = client.delete(f"/jobs/{again}")
    assert r.status_code == 404, r.text
