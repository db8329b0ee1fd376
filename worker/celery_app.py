"""The worker service's Celery app: the backend's sending app (``backend.queue``) plus the consuming side.

Reliability settings: late acknowledgement and reject-on-worker-lost (a task whose worker dies is
redelivered), prefetch 1, the job time limit as Celery's soft limit (the hard one a minute later), no
remote control on the filesystem broker (it has no broadcast). The tasks are in ``worker.tasks``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.transport import filesystem

from backend import queue
from backend.config import Settings, get_settings

_configured: Celery | None = None

DRAIN_SECONDS = 0.5  # the longest one wait for a message on the filesystem broker


class QuickStopFilesystemTransport(filesystem.Transport):
    """The filesystem broker, waiting at most :data:`DRAIN_SECONDS` per drain.

    Celery's loop for transports without asynchronous I/O drains with a fixed 2 s timeout and looks for a
    stop request only between drains (then drains once more), so an idle worker took about 4 s to notice a
    SIGTERM. Shorter drains cost nothing: an empty drain is one directory listing.
    """

    def drain_events(self, connection: Any, timeout: Any = None, **kwargs: Any) -> Any:
        shorter = DRAIN_SECONDS if timeout is None else min(timeout, DRAIN_SECONDS)  # 0 stays non-blocking
        return super().drain_events(connection, timeout=shorter, **kwargs)


def configure_worker(app: Celery, settings: Settings) -> None:
    """Add the consuming side's settings to the sending app (one app, one broker connection pool)."""
    on_filesystem = settings.celery_broker_url.startswith("filesystem")
    app.conf.update(
        include=["worker.tasks"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.job_time_limit,
        task_time_limit=settings.job_time_limit + 60,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=not on_filesystem,
        worker_send_task_events=False,
        # Celery waits this long for the result of a pool process that died mid-task (10 s by default);
        # results live in the database, so there is nothing to wait for and a stop would only be slower.
        worker_lost_wait=1.0,
    )
    if on_filesystem:
        app.conf.broker_transport = QuickStopFilesystemTransport


def worker_app() -> Celery:
    """The process's Celery app, set up to consume (the same app ``backend.queue`` sends with)."""
    global _configured
    app = queue.sending_app()
    if _configured is not app:
        configure_worker(app, get_settings())
        _configured = app
    return app


# `celery -A worker.celery_app` finds this.
celery = worker_app
