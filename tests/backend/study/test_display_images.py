"""The per-process cache of the images participants see: the same bytes as the database, the data: URL made
from them, bounded in size (cleared when full), and never shared between two databases."""

from __future__ import annotations

import base64

from backend.db import session_scope
from backend.models import Image
from backend.study.display_images import DisplayImages


def _store(image_id: str, data: bytes) -> None:
    with session_scope() as s:
        fields = {"sha256": "0" * 64, "width": 1, "height": 1, "mode": "RGB", "format": "JPEG"}
        s.add(Image(id=image_id, data=data, size_bytes=len(data), **fields))


def test_bytes_and_data_urls_bounded(database) -> None:
    _store("a", b"\xff\xd8a" * 100)
    _store("b", b"\xff\xd8b" * 100)
    cache = DisplayImages(max_bytes=1000)
    with session_scope() as s:
        assert cache.jpeg(s, "a") == b"\xff\xd8a" * 100 and cache.size == 300
        url = cache.data_url(s, "a")
        assert url is not None and url.startswith("data:image/jpeg;base64,")
        assert base64.b64decode(url.split(",", 1)[1]) == b"\xff\xd8a" * 100
        assert cache.size == 300 + len(url)
        assert cache.jpeg(s, "missing") is None and cache.data_url(s, "missing") is None
        cache.data_url(
            s, "b"
        )  # 300 more bytes and a 427-character URL: over 1000, so the cache starts afresh
        assert cache.size <= 1000
        assert cache.jpeg(s, "a") == b"\xff\xd8a" * 100 and cache.data_url(s, "b") is not None


def test_another_database_does_not_see_this_ones_images(database, monkeypatch, tmp_path) -> None:
    from backend.db import reset_caches
    from tests.conftest import apply_settings, migrate

    _store("same-id", b"\xff\xd8first")
    cache = DisplayImages(max_bytes=10_000)
    with session_scope() as s:
        assert cache.jpeg(s, "same-id") == b"\xff\xd8first"
    apply_settings(
        monkeypatch, DATA_DIR=tmp_path / "other", DATABASE_URL=f"sqlite:///{tmp_path / 'other.db'}"
    )
    reset_caches()
    migrate()
    with session_scope() as s:
        assert cache.jpeg(s, "same-id") is None
