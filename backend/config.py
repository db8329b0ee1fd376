"""The one settings object. Every knob is an environment variable (or a line in ``.env``).

With nothing set, ColorLab runs on the embedded default: a SQLite file and a filesystem Celery broker
under ``DATA_DIR`` (``./var``), so ``make run`` needs no server. Production sets ``DATABASE_URL``
(``postgresql+psycopg://...``) and ``CELERY_BROKER_URL`` (``redis://...``).
"""

from __future__ import annotations

import base64
import enum
import os
import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Lane(enum.StrEnum):
    """The two job queues: feed-forward jobs (one pass, sub-second) and iterative ones (minutes each), each
    consumed by its own workers so that a fast job never waits behind a slow one."""

    fast = "fast"
    iterative = "iterative"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development",
        description="`production` refuses to start with development defaults (e.g. no admin password).",
    )
    data_dir: Path = Field(
        Path("var"),
        description="Where the embedded default keeps its SQLite file and broker queue (a relative path: "
        "from the folder `colorlab` runs in).",
    )
    database_url: str = Field(
        "", description="SQLAlchemy URL. Empty: SQLite file `DATA_DIR/colorlab.sqlite3`."
    )
    celery_broker_url: str = Field(
        "", description="Celery broker. Empty: filesystem broker under `DATA_DIR/broker`."
    )
    db_pool_size: int = Field(
        8,
        description="Database connections each process keeps open for reuse (opened lazily). With the "
        "defaults 8 of the WEB_THREADS + 2 × STUDY_THREADS (14) threads that may each need one keep theirs, "
        "and the rest open one from DB_MAX_OVERFLOW for a moment under load; set it to that sum to keep one "
        "per thread (more idle connections on the database).",
    )
    db_max_overflow: int = Field(
        16,
        description="Extra connections a process may open for a moment under load (closed when returned). "
        "POOL_SIZE + MAX_OVERFLOW must be at least WEB_THREADS + 2 × STUDY_THREADS (the participants' "
        "requests and their answers), so a request thread never waits for one.",
    )
    web_threads: int = Field(
        8,
        description="Threads of each web process for blocking work (database, image encoding); requests "
        "beyond them queue, they do not fail. Few is fast: a request holds a thread for about a millisecond, "
        "and more threads only contend for the same cores (benchmarks/RESULTS.md, 'User study').",
    )
    study_threads: int = Field(
        3,
        description="Threads of each web process for the study participants' requests, apart from "
        "WEB_THREADS (a study in progress never waits behind other work), and as many again for their "
        "answers (a participant in mid-study never waits behind a crowd opening the link). Each holds one "
        "database connection at most while it works.",
    )
    web_workers: int = Field(
        1,
        description="Web processes `colorlab serve` starts (one per core is a good start; compose runs 2). "
        "Each has its own pool of DB_POOL_SIZE + DB_MAX_OVERFLOW connections.",
    )
    weights_dir: Path = Field(
        Path("var/weights"),
        description="Where `colorlab weights fetch` puts weight files and the methods look for them (a "
        "relative path: from the folder `colorlab` runs in; `colorlab methods` says which folder that is).",
    )
    examples_dir: Path = Field(
        Path("../shared/data/exemplar-pairs"),
        description="Colour photos offered as example references (to the reference methods and on "
        "/compare): the files named `ref*` in it and its subfolders, the first 12 in path order.",
    )
    host: str = Field("127.0.0.1", description="Address `colorlab serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `colorlab serve` binds.")
    public_url: str = Field(
        "",
        description="Base URL printed and used in links (webhook calls carry absolute ones). Empty: "
        "http://HOST:PORT; required in production once WEBHOOK_SECRET is set.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Proxies whose X-Forwarded-For/-Proto headers are believed (comma-separated IPs or "
        "networks; `*`: any, the client being the last hop). Empty: none, the client is the TCP peer.",
    )
    api_docs: bool | None = Field(
        None,
        description="Serve /docs, /redoc and /openapi.json. Empty: on in development, off in production.",
    )
    metrics_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token a monitoring system sends to read GET /metrics (`Authorization: Bearer "
        "...`). Empty: /metrics is open in development and off (404) in production.",
    )
    header_read_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a client may take to send a request's headers before it is disconnected.",
    )
    body_read_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds a request body may stall between two chunks before the request gets 408.",
    )

    max_upload_bytes: int = Field(
        20_000_000, ge=1, description="Largest accepted image file, in bytes (checked while streaming)."
    )
    max_pixels: int = Field(
        40_000_000, ge=1, description="Largest accepted image, in pixels (width × height)."
    )
    max_pixels_per_byte: float = Field(
        60.0,
        gt=0,
        description="Most pixels per byte of file for 8-bit images over 4 MP (×8 for 1-bit scans, ÷2 for "
        "16-bit, ÷4 for 32-bit samples): a tiny file that decodes to a huge image is a decompression bomb "
        "(photos compress to about 1–10 pixels per byte).",
    )
    max_jpeg_scans: int = Field(
        32,
        ge=1,
        description="Most scans in a progressive JPEG (cameras write 1–12; thousands make decoding slow).",
    )
    decode_concurrency: int = Field(
        2, ge=1, description="Most images one web process decodes or encodes at a time; more wait their turn."
    )

    colorize_rate: int = Field(
        30,
        ge=1,
        description="Most upload requests (`POST /colorize`, `POST /batches`, `POST /compare`, `POST "
        '/jobs/{id}/rerun`: each "Fix colours" preview is one) per client IP per minute (per web process), '
        "else 429. A batch counts as one request.",
    )
    photo_budget: int = Field(
        600,
        ge=1,
        description="Most photos one client IP may submit per hour (per web process), single uploads and "
        "every photo of a batch alike, else 429.",
    )
    batch_max_photos: int = Field(200, ge=1, description="Most photos in one batch (`POST /batches`).")
    batch_max_bytes: int = Field(
        300_000_000,
        ge=1,
        description="Largest `POST /batches` request body in bytes (all photos, or the zip, together).",
    )
    fast_queue: str = Field(
        "fast",
        description="Celery queue of feed-forward jobs (one pass, sub-second): the fast lane; another name "
        "than ITERATIVE_QUEUE's.",
    )
    iterative_queue: str = Field(
        "iterative",
        description="Celery queue of iterative jobs (exemplar: minutes each): the slow lane, consumed by "
        "its own worker processes so that a fast job never waits behind one.",
    )
    fast_concurrency: int = Field(
        1, ge=1, description="Worker processes of `colorlab worker --lane fast` (one model cache each)."
    )
    iterative_concurrency: int = Field(
        1, ge=1, description="Worker processes of `colorlab worker --lane iterative` (one model cache each)."
    )
    device: str = Field(
        "auto", description="Torch device for the worker: auto (CUDA when present), cpu, cuda, cuda:N."
    )
    cpu_bf16: bool = Field(
        True,
        description="Feed-forward nets run under bfloat16 autocast on a CPU that has it natively (AVX-512 "
        "BF16 / AMX; about 2.5× faster, ab within about a Lab unit of float32); false: always float32.",
    )
    torch_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Torch intra-op threads in the worker; 0 = torch's default (at most 256).",
    )
    job_time_limit: int = Field(
        3600,
        ge=10,
        description="Seconds a job may run: an iterative one stops just before, keeping the colours reached; "
        "another is stopped and failed.",
    )
    job_max_attempts: int = Field(
        3,
        ge=1,
        description="Attempts (deliveries) per job before it is marked failed; an iterative job's attempts "
        "are counted from the last one that saved its progress (RESUME_STATE_INTERVAL).",
    )
    heartbeat_interval: float = Field(5.0, gt=0, description="Seconds between a running job's heartbeats.")
    stale_after: float = Field(
        60.0,
        gt=0,
        description="A running job with no heartbeat for this long is re-queued; at least twice "
        "HEARTBEAT_INTERVAL.",
    )
    requeue_after: float = Field(
        300.0, gt=0, description="A queued job not started after this long is sent to the broker again."
    )
    sweep_interval: float = Field(15.0, gt=0, description="Seconds between sweeps for lost or stalled jobs.")
    webhook_secret: SecretStr = Field(
        SecretStr(""),
        description="Key that signs webhook calls (Standard Webhooks): 24 to 64 random bytes in base64, "
        "with or without the `whsec_` prefix, e.g. from `openssl rand -base64 32`. Required for webhooks in "
        "production; empty in development: calls go unsigned.",
    )
    webhook_allow_private: bool | None = Field(
        None,
        description="Whether webhook URLs may point at loopback, private or link-local addresses (an "
        "archive's own server on the LAN). Empty: yes in development, no in production.",
    )
    webhook_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds each step of a webhook call may take (connecting, the TLS handshake, each "
        "read); a whole call is cut off, and counts as failed, after twice this.",
    )
    webhook_poll_interval: float = Field(
        1.0, gt=0, description="Seconds between the worker's looks for webhook calls due (new or retried)."
    )
    batch_max: int = Field(
        16, ge=1, description="Most queued jobs of one feed-forward method the worker colorizes in one batch."
    )
    preview_interval: float = Field(
        2.0, ge=0, description="Least seconds between two live previews of an iterative job."
    )
    resume_state_interval: float = Field(
        30.0,
        ge=0,
        description="Seconds between two saves of a running iterative job's state: a worker stopped "
        "mid-job (a redeploy, a crash) loses at most this much of it, the next attempt goes on from the "
        "last save. 0: never saved (an interrupted job starts again).",
    )
    retain_done_days: float = Field(
        30.0, gt=0, description="Days a done job and its images are kept before the sweeper deletes them."
    )
    retain_failed_days: float = Field(
        1.0, gt=0, description="Days a failed or cancelled job and its images are kept (then deleted)."
    )
    preview_retain_hours: float = Field(
        24.0,
        gt=0,
        description='Hours a "Fix colours" preview that was never kept stays (its page deletes the ones it '
        "leaves behind; this catches those a page could not, e.g. a phone that dropped the tab).",
    )
    retention_interval: float = Field(
        3600.0, gt=0, description="Seconds between two retention clean-ups by the sweeper."
    )

    # User study (backend/study, /study/{slug}, /admin).
    admin_password: SecretStr = Field(
        SecretStr(""),
        description="Password of the researcher area /admin: plain text, or a hash from `colorlab study "
        "hash-password` (scrypt$...). Required in production; in development it defaults to `admin` "
        "(with a warning).",
    )
    secret_key: SecretStr = Field(
        SecretStr(""),
        description="Key that signs session cookies and CSRF tokens. Required in production; in development "
        "a random key is made once and kept in `DATA_DIR/secret_key` (mode 0600): sessions survive restarts.",
    )
    admin_session_hours: float = Field(12.0, gt=0, description="Hours an /admin login stays valid.")
    study_answer_rate: int = Field(
        60,
        ge=1,
        description="Most study answers one participant may send per minute (per web process); more: 429.",
    )
    study_start_rate: int = Field(
        30,
        ge=1,
        description="Most new study participants one client address may start per hour (per web process); "
        "more: 429.",
    )
    study_close_grace_minutes: float = Field(
        60.0,
        ge=0,
        description="After a study closes, participants who had already started may keep answering for this "
        "many minutes (0: answers stop at once).",
    )
    study_fast_answer_ms: int = Field(
        400,
        ge=0,
        description="Answers given sooner than this after the image was served (server-measured) are "
        "flagged `too_fast` in the export.",
    )
    study_image_max_side: int = Field(
        512,
        ge=64,
        le=4096,
        description="Longest side in pixels of the images study participants see (all re-encoded alike).",
    )

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'colorlab.sqlite3').resolve()}"
        if not self.celery_broker_url:
            self.celery_broker_url = "filesystem://"
        if not self.public_url:
            if self.environment == "production" and self.webhook_secret.get_secret_value():
                # every call's links point back here: http://HOST:PORT is this machine, not what they reach
                raise ValueError(
                    "ENVIRONMENT=production with WEBHOOK_SECRET needs PUBLIC_URL (the address receivers "
                    "reach this server at: every webhook call carries links to it)"
                )
            self.public_url = f"http://{self.host}:{self.port}"
        return self

    @model_validator(mode="after")
    def _capacity(self) -> Settings:
        request_threads = self.web_threads + 2 * self.study_threads
        if self.db_pool_size + self.db_max_overflow < request_threads:
            raise ValueError(
                f"DB_POOL_SIZE + DB_MAX_OVERFLOW ({self.db_pool_size + self.db_max_overflow}) must be at "
                f"least WEB_THREADS + 2 × STUDY_THREADS ({request_threads})"
            )
        if min(self.web_threads, self.study_threads, self.decode_concurrency, self.web_workers) < 1:
            raise ValueError("WEB_THREADS, STUDY_THREADS, DECODE_CONCURRENCY and WEB_WORKERS must be ≥ 1")
        return self

    @model_validator(mode="after")
    def _study_secrets(self) -> Settings:
        if self.environment == "production":
            secrets_ = (("ADMIN_PASSWORD", self.admin_password), ("SECRET_KEY", self.secret_key))
            missing = [name for name, value in secrets_ if not value.get_secret_value()]
            if missing:
                raise ValueError(f"ENVIRONMENT=production needs {' and '.join(missing)} to be set")
            if len(self.secret_key.get_secret_value()) < 32:
                raise ValueError("SECRET_KEY must be at least 32 characters in production")
        return self

    @model_validator(mode="after")
    def _heartbeats(self) -> Settings:
        # a job whose heartbeats come less often than it is declared lost would be run twice at once
        if self.stale_after < 2 * self.heartbeat_interval:
            raise ValueError(
                f"STALE_AFTER ({self.stale_after:g} s) must be at least twice HEARTBEAT_INTERVAL "
                f"({self.heartbeat_interval:g} s): a running job would be taken for a lost one"
            )
        return self

    @model_validator(mode="after")
    def _webhook_secret(self) -> Settings:
        try:
            size = len(self.webhook_key or b"x" * 32)
        except ValueError:
            size = 0
        if not 24 <= size <= 64:
            raise ValueError(
                "WEBHOOK_SECRET must be 24 to 64 random bytes in base64 (optionally prefixed whsec_), e.g. "
                "from `openssl rand -base64 32`"
            )
        return self

    @model_validator(mode="after")
    def _distinct_lanes(self) -> Settings:
        if self.fast_queue == self.iterative_queue:
            raise ValueError("FAST_QUEUE and ITERATIVE_QUEUE must differ: each lane has its own queue")
        return self

    def queue_of(self, lane: Lane) -> str:
        return self.iterative_queue if lane == Lane.iterative else self.fast_queue

    def concurrency_of(self, lane: Lane) -> int:
        return self.iterative_concurrency if lane == Lane.iterative else self.fast_concurrency

    @property
    def docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.environment != "production"

    @property
    def webhook_key(self) -> bytes | None:
        """The key WEBHOOK_SECRET encodes: base64, with or without Standard Webhooks' ``whsec_`` prefix (as
        their libraries read it); None when unset. ValueError when it is not base64."""
        secret = self.webhook_secret.get_secret_value().strip()
        if not secret:
            return None
        encoded = secret.removeprefix("whsec_")
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)

    @property
    def webhooks_reach_private(self) -> bool:
        if self.webhook_allow_private is not None:
            return self.webhook_allow_private
        return self.environment != "production"

    @property
    def secure_cookies(self) -> bool:
        return self.environment == "production" or self.public_url.startswith("https")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @property
    def visibility_timeout(self) -> int:
        """Redis redelivers an unacknowledged task after this long: longer than the longest job."""
        return int(self.job_time_limit * 1.5) + 60


def development_secret(data_dir: Path) -> str:
    """The development signing key: made once (random, mode 0600) under DATA_DIR and read by every process
    and restart, so participants' and researchers' sessions survive `make run` restarts."""
    path = data_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        for _ in range(50):
            if existing := path.read_text().strip():
                return existing
            time.sleep(0.02)
        raise RuntimeError(f"{path} exists but is empty: delete it and restart") from None
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
