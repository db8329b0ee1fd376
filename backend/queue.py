"""The sending side of the job queue (Celery, torch-free): which lane a job goes to, and putting its id there.

Two lanes: feed-forward jobs go to ``FAST_QUEUE`` and iterative jobs (exemplar, minutes each) to
``ITERATIVE_QUEUE``, each consumed by its own worker processes, so a sub-second job never waits behind a
minutes-long one. The broker carries job ids only; the database is the source of truth, so a message that
cannot be sent is not an error here: the sweeper sends the job again (``backend.job_lifecycle.sweep``).
With the embedded default the broker is a folder of message files (no server).

The worker service (``worker/celery_app.py``) adds the consuming side's settings to this same app.
"""

from __future__ import annotations

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from backend.config import Lane, Settings, get_settings

TASK_COLORIZE = "colorlab.colorize"
LANES = tuple(Lane)
# What sending raises while the broker is away (Redis down: a ConnectionError, an OSError; a filesystem
# broker's folder unwritable).
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    KombuOperationalError,
    OSError,
)  # OSError: ConnectionError too


def make_celery(settings: Settings) -> Celery:
    """A Celery app that can send to this deployment's broker (the worker service configures the rest)."""
    app = Celery("colorlab", broker=settings.celery_broker_url)
    transport_options: dict[str, object]
    if settings.celery_broker_url.startswith("filesystem"):
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
        # Longer than the longest job, so Redis never redelivers a job that is still running.
        transport_options = {"visibility_timeout": settings.visibility_timeout}
    app.conf.update(
        task_default_queue=settings.fast_queue,
        task_ignore_result=True,  # no result backend: the database holds every result
        task_serializer="json",
        accept_content=["json"],
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
    )
    return app


_app: Celery | None = None


def sending_app() -> Celery:
    """This process's Celery app for sending (one per process: one broker connection pool)."""
    global _app
    if _app is None:
        _app = make_celery(get_settings())
    return _app


def reset() -> None:
    """Forget the app (tests switch brokers by changing settings)."""
    global _app
    _app = None


def lane_of(method: str) -> Lane:
    """The lane a method's jobs run in: ``iterative`` for iterative methods, else ``fast``."""
    from worker.colorizers import methods  # the torch-free method list

    info = methods.get(method)
    return Lane.iterative if info is not None and info.iterative else Lane.fast


def send(job_id: str, method: str, *, countdown: float | None = None) -> None:
    """Put one job id on its method's lane (the job row must already be committed), optionally to run after
    ``countdown`` seconds. Raises when the broker cannot be reached."""
    queue = get_settings().queue_of(lane_of(method))
    sending_app().send_task(TASK_COLORIZE, args=[job_id], queue=queue, countdown=countdown)
