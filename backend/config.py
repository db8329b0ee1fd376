"""The one settings object. Every knob is an environment variable (or a line in ``.env``).

With nothing set, ColorLab runs on the embedded default: a SQLite file and a filesystem Celery broker
under ``DATA_DIR`` (``./var``), so ``make run`` needs no server. Production sets ``DATABASE_URL``
(``postgresql+psycopg://...``) and ``CELERY_BROKER_URL`` (``redis://...``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development", description="`production` refuses to start with development defaults (e.g. no admin password)."
    )
    data_dir: Path = Field(Path("var"), description="Where the embedded default keeps its SQLite file and broker queue.")
    database_url: str = Field("", description="SQLAlchemy URL. Empty: SQLite file `DATA_DIR/colorlab.sqlite3`.")
    celery_broker_url: str = Field("", description="Celery broker. Empty: filesystem broker under `DATA_DIR/broker`.")
    weights_dir: Path = Field(Path("var/weights"), description="Where `colorlab weights fetch` puts weight files.")
    host: str = Field("127.0.0.1", description="Address `colorlab serve` binds.")
    port: int = Field(8000, description="Port `colorlab serve` binds.")
    public_url: str = Field("", description="Base URL printed and used in links. Empty: http://HOST:PORT.")

    max_upload_bytes: int = Field(20_000_000, description="Largest accepted image file, in bytes (checked while streaming).")
    max_pixels: int = Field(40_000_000, description="Largest accepted image, in pixels (width × height).")

    queue_name: str = Field("gpu", description="Celery queue the colorization tasks go to.")
    worker_concurrency: int = Field(1, description="Worker processes per `colorlab worker` (one model cache each).")
    device: str = Field("auto", description="Torch device for the worker: auto (CUDA when present), cpu, cuda, cuda:N.")
    torch_threads: int = Field(0, description="Torch intra-op threads in the worker; 0 = torch's default.")
    job_time_limit: int = Field(3600, description="Seconds after which a running job is stopped and failed.")
    job_max_attempts: int = Field(3, description="Attempts (deliveries) per job before it is marked failed.")
    heartbeat_interval: float = Field(5.0, description="Seconds between a running job's heartbeats.")
    stale_after: float = Field(60.0, description="A running job with no heartbeat for this long is re-queued.")
    requeue_after: float = Field(300.0, description="A queued job not started after this long is sent to the broker again.")
    sweep_interval: float = Field(15.0, description="Seconds between sweeps for lost or stalled jobs.")
    batch_max: int = Field(16, description="Most queued jobs of one feed-forward method the worker colorizes in one batch.")
    preview_interval: float = Field(2.0, description="Least seconds between two live previews of an iterative job.")

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'colorlab.sqlite3').resolve()}"
        if not self.celery_broker_url:
            self.celery_broker_url = "filesystem://"
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        return self

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


@lru_cache
def get_settings() -> Settings:
    return Settings()
