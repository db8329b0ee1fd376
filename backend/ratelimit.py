"""A per-process sliding-window rate limit (hits per key per window), shared by the API and the study."""

from __future__ import annotations

import threading
import time
from collections import deque


class SlidingWindow:
    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, cost: int = 1) -> bool:
        """Record ``cost`` hits for ``key``; False when that would pass the limit (none recorded then)."""
        now = time.monotonic()
        with self._lock:
            if len(self._hits) > self.max_keys:
                self._hits.clear()
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) + cost > self.limit:
                return False
            q.extend([now] * cost)
            return True
