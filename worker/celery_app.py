"""The Celery application (torch-free): the web process uses it only to send task messages by name.

Two lanes: feed-forward jobs go to ``FAST_QUEUE`` and iterative jobs (exemplar, minutes each) to
``ITERATIVE_QUEUE``, each consumed by its own worker processes, so a sub-second job never waits behind a
minutes-long one. Reliability settings: late acknowledgement and reject-on-worker-lost (a task whose
worker dies is redelivered), prefetch 1, a Redis visibility timeout longer than the longest job (no
redelivery of a job that is still running), no result backend (the database holds every result). With
the embedded default the broker is a folder of message files (no server).
"""

from __future__ import annotations

from celery import Celery

from backend.config import Settings, get_settings

TASK_COLORIZE = "colorlab.colorize"


def make_celery(settings: Settings) -> Celery:
    app = Celery("colorlab", broker=settings.celery_broker_url, include=["worker.tasks"])
    transport_options: dict[str, object] = {}
    filesystem = settings.celery_broker_url.startswith("filesystem")
    if filesystem:
        queue_dir = settings.broker_dir / "queue"
        queue_dir.mkdir(parents=True, exist_ok=True)
        (settings.broker_dir / "processed").mkdir(parents=True, exist_ok=True)
        (settings.broker_dir / "control").mkdir(parents=True, exist_ok=True)
        transport_options = {
            # The exchange → queue table (one file per lane's exchange) beside the queue, not in the cwd.
            "control_folder": str(settings.broker_dir / "control"),
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(settings.broker_dir / "processed"),
            "store_processed": False,
            "polling_interval": 0.5,
        }
    else:
        transport_options = {"visibility_timeout": settings.visibility_timeout}
    app.conf.update(
        task_default_queue=settings.fast_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_soft_time_limit=settings.job_time_limit,
        task_time_limit=settings.job_time_limit + 60,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        # Publishing from a web request must not hang when the broker is down: the job is already committed
        # and the sweeper will send it again.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        worker_hijack_root_logger=False,
        worker_enable_remote_control=not filesystem,  # the filesystem transport has no broadcast
        worker_send_task_events=False,
    )
    return app


_app: Celery | None = None


def get_celery() -> Celery:
    global _app
    if _app is None:
        _app = make_celery(get_settings())
    return _app


def reset() -> None:
    global _app
    _app = None


LANES = ("fast", "iterative")


def lane_of(method: str) -> str:
    """The lane a method's jobs run in: ``iterative`` for iterative methods, else ``fast``."""
    from worker.colorizers import methods  # torch-free

    info = methods.get(method)
    return "iterative" if info is not None and info.iterative else "fast"


def send_colorize(job_id: str, method: str, countdown: float | None = None) -> None:
    """Queue one job id on its method's lane (the job row must already be committed), optionally to run
    after ``countdown`` s."""
    app = get_celery()
    queue = get_settings().queue_of(lane_of(method))
    app.send_task(TASK_COLORIZE, args=[job_id], queue=queue, countdown=countdown)


# `celery -A worker.celery_app` finds this.
celery = get_celery
