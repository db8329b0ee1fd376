"""The images study participants see, kept per process: as JPEG bytes (the image route) and as ``data:`` URLs
(inlined in the participant's state, so that a trial shows without a second request). An image row never
changes, and a crowd of participants sees the same few dozen: reading one from PostgreSQL cost as much as the
rest of the request (benchmarks/RESULTS.md, "User study"). Who may see an image is checked by the caller."""

from __future__ import annotations

import base64
import threading
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from backend.db import DriverStatement
from backend.models import Image

_IMAGE_DATA = DriverStatement(select(Image.data).where(Image.id == bindparam("iid")))


class DisplayImages:
    """Up to ``max_bytes`` of images (cleared when full: a study's images take a few MiB)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.size = max_bytes, 0
        self._jpeg: dict[tuple[object, str], bytes] = {}
        self._data_url: dict[tuple[object, str], str] = {}
        self._lock = threading.Lock()

    def jpeg(self, session: Session, image_id: str) -> bytes | None:
        key = (session.get_bind().engine.url, image_id)
        data = self._jpeg.get(key)
        if data is None:
            data = _IMAGE_DATA.scalar(session, {"iid": image_id})
            if data is not None:
                self._keep(self._jpeg, key, data, len(data))
        return data

    def data_url(self, session: Session, image_id: str) -> str | None:
        key = (session.get_bind().engine.url, image_id)
        url = self._data_url.get(key)
        if url is None:
            data = self.jpeg(session, image_id)
            if data is None:
                return None
            url = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
            self._keep(self._data_url, key, url, len(url))
        return url

    def _keep(
        self, into: dict[tuple[object, str], Any], key: tuple[object, str], value: object, size: int
    ) -> None:
        with self._lock:
            if self.size + size > self.max_bytes:
                self._jpeg.clear()
                self._data_url.clear()
                self.size = 0
            if key not in into:
                into[key] = value
                self.size += size


DISPLAY_IMAGES = DisplayImages(max_bytes=64 * 2**20)
