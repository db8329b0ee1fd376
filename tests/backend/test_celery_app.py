"""The worker service's Celery app (worker/celery_app.py): on the filesystem broker it drains in short waits,
so an idle worker notices a stop request within half a second instead of Celery's fixed two-second drains."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection

from backend.config import Settings
from backend.queue import make_celery
from worker.celery_app import DRAIN_SECONDS, QuickStopFilesystemTransport, configure_worker


def test_the_filesystem_broker_gets_the_quick_stop_transport(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, celery_broker_url="filesystem://")
    app = make_celery(settings)
    configure_worker(app, settings)
    assert app.conf.broker_transport is QuickStopFilesystemTransport
    with app.connection_for_read() as connection:
        assert isinstance(connection.transport, QuickStopFilesystemTransport)

    redis = Settings(data_dir=tmp_path, celery_broker_url="redis://127.0.0.1:6379/0")
    other = Celery("other", broker=redis.celery_broker_url)
    configure_worker(other, redis)
    assert other.conf.broker_transport is None  # Redis has asynchronous I/O: Celery's own loop is quick


@pytest.mark.parametrize("asked", [2.0, 10.0])
def test_an_empty_drain_returns_after_at_most_drain_seconds(tmp_path: Path, asked: float) -> None:
    """Celery's loop asks for 2 s; the transport waits at most DRAIN_SECONDS, whatever it is asked."""
    settings = Settings(data_dir=tmp_path, celery_broker_url="filesystem://")
    app = make_celery(settings)
    options = app.conf.broker_transport_options
    transport = QuickStopFilesystemTransport
    with Connection("filesystem://", transport=transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("empty")
        with conn.Consumer(queue.queue, callbacks=[lambda body, message: None]):
            started = time.monotonic()
            with pytest.raises(socket.timeout):
                conn.drain_events(timeout=asked)
            assert time.monotonic() - started < 3 * DRAIN_SECONDS  # generous for a loaded machine
        queue.close()
