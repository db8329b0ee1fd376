"""Study fixtures: a migrated database with a ready study (stimuli whose colorization jobs are finished with
real result images written through the job tables, as a worker would), and a logged-in admin client."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.conftest import IMAGENET, migrate

ADMIN_PASSWORD = "correct horse battery staple"
SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"


@pytest.fixture(autouse=True)
def _study_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import reset_caches

    monkeypatch.setenv("ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.setenv("SECRET_KEY", SECRET_KEY)
    reset_caches()


def photo_paths(n: int) -> list[Path]:
    return sorted(IMAGENET.glob("*.jpg"))[:n]


def photo_files(n: int):  # type: ignore[no-untyped-def]
    from backend.study.photos import PhotoFile

    return [PhotoFile(p.name, p.read_bytes()) for p in photo_paths(n)]


def fake_colorization(rgb: np.ndarray, shift: int) -> np.ndarray:
    """A plausible but wrong colorization: the channels rotated (keeps the size and the rough lightness)."""
    return np.roll(rgb, shift, axis=-1)


def finish_jobs(session, study) -> int:  # type: ignore[no-untyped-def]
    """Finish the study's queued jobs the way a worker does: store a result PNG, mark the job done."""
    from sqlalchemy import select

    from backend.images import decode, encode_png
    from backend.models import Image, Job, JobStatus, utcnow
    from backend.stored_images import store_result
    from backend.study.models import Stimulus

    rows = session.execute(
        select(Stimulus, Job).join(Job, Job.id == Stimulus.job_id).where(Stimulus.study_id == study.id)
    ).all()
    for i, (_stimulus, job) in enumerate(rows):
        source = session.get(Image, job.input_image_id)
        rgb = decode(source.data, max_pixels=100_000_000).rgb
        out = fake_colorization(rgb, 1 + i % 2)
        result = store_result(session, encode_png(out, compress_level=1), out.shape[1], out.shape[0])
        job.status = JobStatus.done
        job.result_image_id = result.id
        job.finished_at = utcnow()
        job.progress = 1.0
    session.commit()
    return len(rows)


@pytest.fixture
def make_study() -> Callable[..., str]:
    """Build (and by default open) a study on the current database; returns its slug."""

    def build(
        *,
        photos: int = 6,
        methods: tuple[str, ...] = ("cnn", "fusion"),
        trials: tuple[int, int] = (5, 5),
        attention: bool = False,
        open_: bool = True,
        completion_code: str | None = "C0DE-42",
        redirect_url: str | None = None,
        slug: str | None = None,
    ) -> str:
        from backend.config import get_settings
        from backend.db import session_scope
        from backend.study import builder

        settings = get_settings()
        spec = builder.StudySpec(
            title="Real or colorized?",
            methods=list(methods),
            trials_part1=trials[0],
            trials_part2=trials[1],
            attention_checks=attention,
            completion_code=completion_code,
            redirect_url=redirect_url,
            slug=slug,
        )
        with session_scope() as session:
            study = builder.create_study(session, settings, spec, photo_files(photos), check_available=False)
            finish_jobs(session, study)
            if open_:
                builder.open_study(session, settings, study)
            return study.slug

    return build


@pytest.fixture
def db(database: str) -> str:
    return database


@pytest.fixture
def sqlite_db() -> None:
    migrate()


def _client() -> Iterator[object]:
    from fastapi.testclient import TestClient

    from backend.main import create_app

    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def app_client(database: str) -> Iterator[object]:
    """A client of the app on SQLite and, in a second run, on PostgreSQL."""
    yield from _client()


@pytest.fixture
def sqlite_client(sqlite_db: None) -> Iterator[object]:
    """A client of the app on the SQLite default only (for tests that do not depend on the database)."""
    yield from _client()


def login(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/admin/login")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    res = client.post(
        "/admin/login",
        data={"password": ADMIN_PASSWORD, "csrf_token": token, "next": "/admin"},
        follow_redirects=False,
    )
    assert res.status_code == 303, res.text


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def jpeg_size(data: bytes) -> tuple[int, int]:
    with PILImage.open(io.BytesIO(data)) as im:
        return im.size
