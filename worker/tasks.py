"""Celery tasks (the work is in :mod:`worker.runner`; the broker only carries job ids) and each worker's
background loops: the sweeper and the webhook calls."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_process_init, worker_ready
from sqlalchemy.exc import DBAPIError

from backend.config import get_settings
from backend.queue import BROKER_ERRORS, TASK_COLORIZE
from worker.celery_app import worker_app
from worker.runner import Runner

log = logging.getLogger("colorlab.worker")
app = worker_app()
_runner: Runner | None = None
# A database or broker briefly away: the loops say it in a line and try again next round.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, *BROKER_ERRORS)


def runner() -> Runner:
    global _runner
    if _runner is None:
        _runner = Runner(get_settings())
    return _runner


@app.task(name=TASK_COLORIZE, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def colorize(job_id: str) -> str:
    return runner().run(str(job_id))


@worker_process_init.connect
def _fresh_process(**_: object) -> None:
    """A forked pool process must not share the parent's database connections."""
    from backend import db

    db.get_engine().dispose(close=False)
    settings = get_settings()
    if settings.torch_threads > 0:
        import torch

        torch.set_num_threads(settings.torch_threads)


@worker_ready.connect
def _start_background_loops(**_: object) -> None:
    threading.Thread(target=_sweep_forever, name="colorlab-sweeper", daemon=True).start()
    threading.Thread(target=_deliver_forever, name="colorlab-webhooks", daemon=True).start()


def _deliver_forever() -> None:
    """Make the webhook calls that are due (every worker does; each call is claimed by one)."""
    from backend.webhooks import deliver_due

    settings = get_settings()
    stop = threading.Event()
    while not stop.wait(settings.webhook_poll_interval):
        try:
            while deliver_due(settings):  # a backlog goes out without waiting between rounds
                pass
        except TRANSIENT_ERRORS as exc:  # database briefly away: try again next round
            log.warning("webhook delivery failed: %s", exc)
        except Exception:  # a bug: its traceback, and the loop goes on
            log.exception("webhook delivery failed")


def _sweep_forever() -> None:
    import time

    from backend.db import session_scope
    from backend.job_lifecycle import purge_expired, sweep

    settings = get_settings()
    stop = threading.Event()
    next_purge = time.monotonic()
    while not stop.wait(settings.sweep_interval):
        try:
            with session_scope() as s:
                sweep(s, settings)
            if time.monotonic() >= next_purge:  # retention: expired jobs and their images (logged)
                with session_scope() as s:
                    purge_expired(s, settings)
                next_purge = time.monotonic() + settings.retention_interval
        except TRANSIENT_ERRORS as exc:  # database or broker briefly away: try again next round
            log.warning("sweep failed: %s", exc)
        except Exception:  # a bug: its traceback, and the loop goes on
            log.exception("sweep failed")
