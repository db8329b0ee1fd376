"""Per-process rate limits: sliding windows of hits per key, one registry for every limit of the web app.

Over a limit is a :class:`~backend.errors.UserError` 429 with ``Retry-After``. The researcher login throttle
is different on purpose: it is counted in the database, shared by every web process (``backend.auth``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

from fastapi import Request

from backend.config import Settings
from backend.deps import SettingsDep
from backend.errors import UserError
from backend.web import client_limit_key


class SlidingWindow:
    """At most ``limit`` hits per key in any ``window`` seconds, for at most ``max_keys`` keys: past that, the
    keys hit least recently are forgotten (the expired ones first, as they lose nothing), so spraying new
    addresses cannot reset every other client's count at once."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()  # least recently hit first
        self._lock = threading.Lock()

    def allow(self, key: str, cost: int = 1) -> bool:
        """Record ``cost`` hits for ``key``; False when that would pass the limit (none recorded then)."""
        now = time.monotonic()
        with self._lock:
            q = self._hits.get(key)
            if q is None:
                q = self._hits[key] = deque()
                while len(self._hits) > self.max_keys:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(key)
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) + cost > self.limit:
                return False
            q.extend([now] * cost)
            return True


_windows: dict[tuple[str, int, float], SlidingWindow] = {}
_windows_lock = threading.Lock()


def window(name: str, limit: int, seconds: float) -> SlidingWindow:
    """The process's window for one named limit (a changed setting gets a fresh one)."""
    key = (name, limit, seconds)
    with _windows_lock:
        if key not in _windows:
            _windows[key] = SlidingWindow(limit, window=seconds)
        return _windows[key]


def reset() -> None:
    """Forget every count (tests start afresh)."""
    with _windows_lock:
        _windows.clear()


def _allow(name: str, limit: int, seconds: float, key: str, cost: int = 1) -> bool:
    return window(name, limit, seconds).allow(key, cost)


def upload_rate_limit(request: Request, settings: SettingsDep) -> None:
    """Dependency of every upload route: at most COLORIZE_RATE upload requests per client per minute."""
    if not _allow("uploads", settings.colorize_rate, 60.0, client_limit_key(request)):
        raise UserError(
            429,
            f"too many uploads: at most {settings.colorize_rate} per minute; try again shortly",
            headers={"Retry-After": "60"},
        )


def spend_photo_budget(request: Request, settings: Settings, photos: int) -> None:
    """Count ``photos`` against this client's hourly PHOTO_BUDGET (a batch spends one per photo), keyed like
    every limit on ``client_limit_key`` (behind our proxy: the client's, not the proxy's, address; an IPv6
    client by its /64)."""
    if not _allow("photos", settings.photo_budget, 3600.0, client_limit_key(request), photos):
        raise UserError(
            429,
            f"too many photos: at most {settings.photo_budget} per hour from one client "
            f"(this request has {photos}); try again later",
            headers={"Retry-After": "600"},
        )


def count_new_participant(request: Request, settings: Settings) -> None:
    """At most STUDY_START_RATE new study participants per client address per hour."""
    if not _allow("participants", settings.study_start_rate, 3600.0, client_limit_key(request)):
        raise UserError(
            429,
            "too many new participants from this network in the last hour; try again later",
            headers={"Retry-After": "600"},
        )


def count_answer(participant_id: str, settings: Settings) -> None:
    """At most STUDY_ANSWER_RATE answers per participant per minute."""
    if not _allow("answers", settings.study_answer_rate, 60.0, participant_id):
        raise UserError(429, "too many answers in a short time; wait a moment", headers={"Retry-After": "10"})
