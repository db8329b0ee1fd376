"""Idempotency keys (backend.idempotency): an upload sent again with its key gets its first answer and
makes nothing new; a refused one leaves nothing behind; another request under the same key is refused
(SQLite and PostgreSQL)."""

from __future__ import annotations

import io
from datetime import timedelta

from PIL import Image
from sqlalchemy import func, select

from backend import idempotency
from backend import job_lifecycle as lifecycle
from backend.config import get_settings
from backend.db import session_scope
from backend.models import Batch, IdempotentRequest, Job, utcnow


def png(value: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (64, 48), value).save(buf, format="PNG")
    return buf.getvalue()


def count(model: type) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def post_photo(client, key: str | bytes | None, method: str = "cnn"):  # type: ignore[no-untyped-def]
    headers = {} if key is None else {"Idempotency-Key": key}
    files = {"image": ("a.png", png(), "image/png")}
    return client.post("/colorize", files=files, data={"method": method}, headers=headers)


def test_a_photo_sent_again_with_its_key_gets_the_first_answer(client) -> None:  # type: ignore[no-untyped-def]
    first = post_photo(client, "7f1c-upload-1")
    assert first.status_code == 202, first.text
    again = post_photo(client, "7f1c-upload-1")
    assert again.status_code == 202 and again.json() == first.json()
    assert (
        again.headers["idempotent-replayed"] == "true"
        and again.headers["location"] == first.headers["location"]
    )
    assert "idempotent-replayed" not in first.headers
    assert count(Job) == 1
    assert post_photo(client, "7f1c-upload-2").json()["id"] != first.json()["id"]  # a new key: a new job
    assert post_photo(client, None).status_code == 202  # without a key, as ever
    assert count(Job) == 3


def test_another_request_under_a_key_is_refused_and_a_refused_one_leaves_no_trace(client) -> None:  # type: ignore[no-untyped-def]
    assert post_photo(client, "k-1").status_code == 202
    other = post_photo(client, "k-1", method="gan")
    assert other.status_code == 422 and "another request" in other.json()["detail"]
    refused = post_photo(client, "k-2", method="no-such-method")
    assert refused.status_code == 422
    assert post_photo(client, "k-2").status_code == 202  # mended and sent again: handled anew
    for bad in ("", "x" * 256, "naïve".encode("latin-1"), "tab\there"):
        r = post_photo(client, bad)
        assert r.status_code == 422 and "Idempotency-Key" in r.json()["detail"], bad
    assert count(Job) == 2


def test_a_key_whose_first_request_is_still_being_handled_answers_409(client) -> None:  # type: ignore[no-untyped-def]
    first = post_photo(client, "slow")
    assert first.status_code == 202
    with session_scope() as s:  # as if the first were still running
        s.execute(IdempotentRequest.__table__.update().values(status_code=None, body=None))
        s.commit()
    r = post_photo(client, "slow")
    assert r.status_code == 409 and r.headers["retry-after"] and "still being handled" in r.json()["detail"]


def test_batches_comparisons_and_reruns_take_keys_too(client) -> None:  # type: ignore[no-untyped-def]
    headers = {"Idempotency-Key": "batch-1"}
    files = [("images", (f"{n}.png", png(80 + n), "image/png")) for n in range(2)]
    batch = [client.post("/batches", files=files, data={"method": "cnn"}, headers=headers) for _ in range(2)]
    assert batch[0].status_code == batch[1].status_code == 202 and batch[0].json() == batch[1].json()
    assert count(Batch) == 1 and count(Job) == 2
    send = {"image": ("c.png", png(), "image/png")}
    headers = {"Idempotency-Key": "compare-1"}
    compare = [
        client.post("/compare", files=send, data={"methods": "cnn,gan"}, headers=headers) for _ in range(2)
    ]
    assert compare[0].json() == compare[1].json() and count(Job) == 4
    job_id = compare[0].json()["jobs"][0]
    headers = {"Idempotency-Key": "rerun-1"}
    reruns = [client.post(f"/jobs/{job_id}/rerun", data={"method": "gan"}, headers=headers) for _ in range(2)]
    assert reruns[0].status_code == 202 and reruns[0].json() == reruns[1].json() and count(Job) == 5


def test_records_are_forgotten_after_a_day(client) -> None:  # type: ignore[no-untyped-def]
    assert post_photo(client, "old").status_code == 202
    with session_scope() as s:
        s.execute(
            IdempotentRequest.__table__.update().values(
                created_at=utcnow() - timedelta(hours=lifecycle.IDEMPOTENCY_HOURS + 1)
            )
        )
        s.commit()
        lifecycle.purge_expired(s, get_settings())
    assert count(IdempotentRequest) == 0
    assert post_photo(client, "old").json()["id"]  # the key is free again: a new job
    assert count(Job) == 2


def test_a_key_whose_first_request_died_unanswered_is_taken_over(client) -> None:  # type: ignore[no-untyped-def]
    """Its process died before it answered (no record of an answer, ever): after PENDING_GIVEN_UP the key
    is handled anew rather than answering 409 for a whole day."""
    assert post_photo(client, "orphan").status_code == 202
    with session_scope() as s:
        s.execute(
            IdempotentRequest.__table__.update().values(
                status_code=None, body=None, created_at=utcnow() - idempotency.PENDING_GIVEN_UP * 2
            )
        )
        s.commit()
    again = post_photo(client, "orphan")
    assert again.status_code == 202 and "idempotent-replayed" not in again.headers
    assert post_photo(client, "orphan").json() == again.json()  # and recorded anew
