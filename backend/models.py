"""ORM tables (SQLAlchemy 2). The schema is owned by Alembic: the app never calls create_all.

These classes are storage only; the API's JSON shapes live in ``schemas.py``.
"""

from __future__ import annotations

import enum
import re
import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 22  # 62^22 > 2^130


def random_string(alphabet: str, length: int) -> str:
    """``length`` characters drawn uniformly and independently from ``alphabet`` (at most 256 characters) by
    the OS's random source. Bytes map onto the alphabet through a translation table (C speed: a study's
    burst draws a dozen ids per participant); bytes past the last whole multiple of the alphabet's size are
    dropped, so that no character is more likely than another."""
    table = _TABLES.get(alphabet)
    if table is None:
        usable = 256 - 256 % len(alphabet)
        mapping = bytes(ord(alphabet[b % len(alphabet)]) for b in range(usable)).ljust(256, b"\0")
        table = _TABLES[alphabet] = (mapping, bytes(range(usable, 256)))
    out = b""
    while len(out) < length:
        out += secrets.token_bytes(length + 8).translate(table[0], table[1])
    return out[:length].decode("ascii")


_TABLES: dict[str, tuple[bytes, bytes]] = {}


def new_id() -> str:
    """Unguessable identifier (130 bits of randomness) of letters and digits only: URL-safe, and never
    starting with a character that spreadsheets (and so the CSV exports' formula guard) treat specially."""
    return random_string(ID_ALPHABET, ID_LENGTH)


_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def is_valid_id(value: str) -> bool:
    """Could ``value`` be one of our ids? (Checked before any lookup: no odd bytes reach the database.)"""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATUSES


# The statuses a job ends in (and never leaves).
FINISHED_STATUSES = (JobStatus.done, JobStatus.failed, JobStatus.cancelled)


class Image(Base):
    """An image's bytes, stored in the database, with what decoding it told us."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))  # Pillow mode of the file as uploaded
    format: Mapped[str] = mapped_column(String(16))  # PNG, JPEG, ... of the stored bytes
    is_color: Mapped[bool] = mapped_column(default=False)  # has chroma: kept as ground truth
    # The first uploader's file name: never shown to anyone (identical uploads by others share this row);
    # jobs keep their own names (source_name, reference_name).
    filename: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Served renditions, made once when an upload is stored (images.renditions): the raw upload is never
    # decoded again to answer a GET. NULL on rows from before 0005 (made on first request, then kept).
    gray_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    color_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)  # None: gray_png is it
    thumb_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)


class Batch(Base):
    """Many photos submitted together with one method and options; each accepted photo is one job."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    method: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client: Mapped[str | None] = mapped_column(String(64), index=True)
    # Photos refused at upload ({"name", "detail"} each): reported with the batch, the rest went on.
    rejected: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Called once every photo has finished (a "batch.finished" WebhookDelivery); NULL: no webhook.
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_delivery: Mapped[WebhookDelivery | None] = relationship(
        "WebhookDelivery", primaryjoin="Batch.id == WebhookDelivery.batch_id", viewonly=True
    )


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    method: Mapped[str] = mapped_column(String(64), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued, index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    progress_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # step, total, message, losses
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(255))
    client: Mapped[str | None] = mapped_column(String(64), index=True)  # hashed browser cookie, for history
    group_id: Mapped[str | None] = mapped_column(String(32), index=True)  # jobs of one comparison
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id"), index=True)  # jobs of one batch
    # The job this one re-ran with other options (POST /jobs/{id}/rerun); NULL once that job is deleted.
    rerun_of: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    # A "Fix colours" preview: left out of the history until kept (POST /jobs/{id}/keep), and deleted by the
    # retention sweep after PREVIEW_RETAIN_HOURS when never kept (a page that went before it could say).
    fix_preview: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The uploaded file's name, sanitised (stored_images.display_name): shown and used in download names,
    # never a path. Kept on the job because identical uploads share one stored image.
    source_name: Mapped[str | None] = mapped_column(String(255))
    reference_name: Mapped[str | None] = mapped_column(String(255))  # the reference's, likewise
    # Quality against the ground truth when the upload was a colour photo (see worker.quality).
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Called once the job has finished, failed or been cancelled (a "job.finished" WebhookDelivery).
    webhook_url: Mapped[str | None] = mapped_column(String(2048))

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    enqueued_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    run_seconds: Mapped[float | None] = mapped_column(Float)  # compute time of the successful attempt

    input_image_id: Mapped[str] = mapped_column(ForeignKey("images.id"))
    reference_image_id: Mapped[str | None] = mapped_column(ForeignKey("images.id"))
    result_image_id: Mapped[str | None] = mapped_column(ForeignKey("images.id"))
    # Latest live preview of an iterative job (PNG), overwritten in place; dropped when the job ends.
    preview_png: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    preview_at: Mapped[datetime | None] = mapped_column()
    # An iterative job's saved state (worker.colorizers.base.IterationState as .npz) after iteration
    # resume_step, written now and then by attempt resume_attempt: the next attempt goes on from it, and
    # attempts are counted from it (JOB_MAX_ATTEMPTS bounds attempts that saved no progress). Dropped when the
    # job ends.
    resume_state: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    resume_step: Mapped[int | None] = mapped_column(Integer)
    resume_attempt: Mapped[int | None] = mapped_column(Integer)

    input_image: Mapped[Image] = relationship(foreign_keys=[input_image_id], lazy="joined")
    reference_image: Mapped[Image | None] = relationship(foreign_keys=[reference_image_id])
    result_image: Mapped[Image | None] = relationship(foreign_keys=[result_image_id])
    # The webhook call this job owes (none before it finishes, or without webhook_url).
    webhook_delivery: Mapped[WebhookDelivery | None] = relationship(
        "WebhookDelivery", primaryjoin="Job.id == WebhookDelivery.job_id", viewonly=True
    )

    @property
    def state(self) -> JobStatus:
        return JobStatus(self.status)


class WebhookState(enum.StrEnum):
    pending = "pending"  # due at next_attempt_at (the first call, or a retry)
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # every attempt failed, or the receiver answered 410 Gone


class WebhookDelivery(Base):
    """A call owed to a webhook URL: that a job, or every photo of a batch, has finished. Made in the same
    transaction as the state change it reports (an outbox), so a crash can delay a call but never lose it;
    ``backend.webhooks`` makes the calls and records each attempt. Deleted with its job or batch."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)  # the call's webhook-id
    event: Mapped[str] = mapped_column(String(32))  # job.finished | batch.finished
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16), default=WebhookState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)  # NULL once delivered or failed
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's last HTTP status
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()


class IdempotentRequest(Base):
    """An upload sent with an ``Idempotency-Key`` header and what it was answered: the same request sent
    again (after a lost answer) gets the same answer instead of a second job (``backend.idempotency``).
    Kept IDEMPOTENCY_HOURS."""

    __tablename__ = "idempotent_requests"

    # sha256 of the key and the client's address: a key is one client's, never looked up across clients
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # the request's path and fields (not the bytes)
    status_code: Mapped[int | None] = mapped_column(Integer)  # None while the first request is handled
    body: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
