"""Per-process rate limits: sliding windows of hits per key, one registry for every limit of the web app.

Over a limit is a :class:`~backend.errors.UserError` 429 with ``Retry-After``. The researcher login throttle
is different on purpose: it is counted in the database, shared by every web process (``backend.auth``).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.config import Settings, get_settings
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

    def refund(self, key: str, cost: int = 1) -> None:
        """Take back the last ``cost`` hits of ``key`` (a request refused after it was counted)."""
        with self._lock:
            q = self._hits.get(key)
            if q is None:
                return
            for _ in range(min(cost, len(q))):
                q.pop()


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


# The upload requests: POST /colorize, /batches, /compare and /jobs/{id}/rerun
UPLOAD_PATHS = re.compile(r"/(colorize|batches|compare|jobs/[^/]+/rerun)")


class UploadRateMiddleware:
    """At most COLORIZE_RATE upload requests per client per minute, counted before the body is read: a client
    over the limit gets its 429 at once (``Connection: close``), not after sending up to BATCH_MAX_BYTES."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and UPLOAD_PATHS.fullmatch(scope["path"]):
            rate = get_settings().colorize_rate
            if not _allow("uploads", rate, 60.0, client_limit_key(Request(scope))):
                refused = JSONResponse(
                    {"detail": f"too many uploads: at most {rate} per minute; try again shortly"},
                    status_code=429,
                    headers={"Retry-After": "60", "Connection": "close"},
                )
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


@contextmanager
def photo_budget(request: Request, settings: Settings, photos: int) -> Iterator[None]:
    """Count ``photos`` against this client's hourly PHOTO_BUDGET (a batch spends one per photo) for the
    work inside; a refusal there (a UserError: an unknown reference, no usable photo) gives them back. Keyed
    like every limit on ``client_limit_key`` (behind our proxy: the client's, not the proxy's, address; an
    IPv6 client by its /64). More photos than the whole budget is 413: waiting would not help."""
    if photos > settings.photo_budget:
        raise UserError(
            413,
            f"this request has {photos} photos and one client may send at most {settings.photo_budget} an "
            "hour (PHOTO_BUDGET): send them in smaller parts",
        )
    key = client_limit_key(request)
    budget = window("photos", settings.photo_budget, 3600.0)
    if not budget.allow(key, photos):
        raise UserError(
            429,
            f"too many photos: at most {settings.photo_budget} per hour from one client "
            f"(this request has {photos}); try again later",
            headers={"Retry-After": "600"},
        )
    try:
        yield
    except UserError:
        budget.refund(key, photos)
        raise


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
