"""``GET /metrics``: the service's state for a monitoring system (Prometheus's text format), read from the
database.

The database is the source of truth that every web process and worker shares (a counter kept in one of N
web processes would be that process's view, and lost with it), so each scrape asks it a few aggregate
questions: how many jobs wait and run in each lane and since when, whether a running job's worker has gone
quiet, and what finished in the last hour, how fast: grouped counts, and the last hour's finished jobs'
timings (4 ms a scrape with 1,000 jobs stored, 0.2 s with 50,000: ``benchmarks/bench_metrics.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.models import Job, JobStatus, WebhookDelivery, WebhookState, utcnow
from backend.queue import LANES, lane_of
from backend.study.stats import percentile

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WINDOW = timedelta(hours=1)  # "recent": what finished within this long
QUANTILES = (0.5, 0.95)


@dataclass(frozen=True)
class Metric:
    name: str
    help: str
    samples: Sequence[tuple[dict[str, str], float]]  # (labels, value)


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def collect(session: Session, settings: Settings, now: datetime | None = None) -> list[Metric]:
    """The metrics as of ``now``."""
    now = now or utcnow()
    by_status: dict[str, float] = {str(s): 0.0 for s in JobStatus}
    waiting: dict[str, float] = dict.fromkeys(LANES, 0.0)
    running: dict[str, float] = dict.fromkeys(LANES, 0.0)
    oldest: dict[str, float] = dict.fromkeys(LANES, 0.0)
    grouped = session.execute(
        select(Job.status, Job.method, func.count(), func.min(Job.created_at)).group_by(
            Job.status, Job.method
        )
    )
    for status, method, count, first in grouped:
        by_status[status] = by_status.get(status, 0.0) + count
        lane = lane_of(method)
        if status == JobStatus.queued:
            waiting[lane] += count
            oldest[lane] = max(oldest[lane], _age(now, first))
        elif status == JobStatus.running:
            running[lane] += count
    quiet = session.scalar(
        select(func.count()).where(
            Job.status == JobStatus.running,
            Job.heartbeat_at < now - timedelta(seconds=settings.stale_after),
        )
    )
    finished = session.execute(
        select(Job.method, Job.status, Job.run_seconds, Job.created_at, Job.started_at).where(
            Job.finished_at >= now - WINDOW
        )
    ).all()
    outcomes: dict[tuple[str, str], float] = defaultdict(float)
    run_seconds: dict[str, list[float]] = defaultdict(list)
    waits: dict[str, list[float]] = defaultdict(list)
    for method, status, seconds, created, started in finished:
        outcomes[(method, status)] += 1
        if status == JobStatus.done and seconds is not None:
            run_seconds[method].append(float(seconds))
        if started is not None:
            waits[lane_of(method)].append(_age(started, created))
    calls: dict[str, float] = {str(state): 0.0 for state in WebhookState}
    for state, count in session.execute(
        select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)
    ):
        calls[state] = float(count)
    first_due = session.scalar(
        select(func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.state == WebhookState.pending, WebhookDelivery.next_attempt_at <= now
        )
    )
    return [
        Metric("colorlab_database_up", "1: the database answered this scrape.", [({}, 1.0)]),
        Metric(
            "colorlab_jobs", "Jobs stored, by status.", [({"status": s}, n) for s, n in by_status.items()]
        ),
        Metric("colorlab_queued_jobs", "Jobs waiting for a worker, by lane.", _per_lane(waiting)),
        Metric("colorlab_running_jobs", "Jobs a worker is running, by lane.", _per_lane(running)),
        Metric(
            "colorlab_oldest_queued_job_seconds",
            "How long the longest-waiting queued job has waited since its upload, by lane (0: none waits; a "
            "job the sweeper re-queued counts from its upload, its lost run included).",
            _per_lane(oldest),
        ),
        Metric(
            "colorlab_quiet_running_jobs",
            "Running jobs whose worker has not reported for STALE_AFTER seconds (the sweeper re-queues them; "
            "more than a moment: workers are dying).",
            [({}, float(quiet or 0))],
        ),
        Metric(
            "colorlab_recent_finished_jobs",
            "Jobs finished in the last hour, by method and outcome (done, failed, cancelled).",
            [({"method": m, "status": s}, n) for (m, s), n in sorted(outcomes.items())],
        ),
        Metric(
            "colorlab_recent_run_seconds",
            "Compute seconds of the jobs done in the last hour, by method: quantiles.",
            _quantiles(run_seconds, "method"),
        ),
        Metric(
            "colorlab_recent_wait_seconds",
            "Seconds from upload to a worker starting (the last start, for a re-queued job), of the jobs "
            "finished in the last hour, by lane: quantiles.",
            _quantiles(waits, "lane"),
        ),
        Metric(
            "colorlab_webhook_calls",
            "Webhook calls stored, by state: pending (due, or waiting to be retried), delivered, failed "
            "(given up).",
            [({"state": state}, n) for state, n in calls.items()],
        ),
        Metric(
            "colorlab_overdue_webhook_seconds",
            "How long the most overdue webhook call has been due (0: none; more than a few seconds: no "
            "worker is making the calls).",
            [({}, _age(now, first_due) if first_due is not None else 0.0)],
        ),
    ]


def _per_lane(values: dict[str, float]) -> list[tuple[dict[str, str], float]]:
    return [({"lane": lane}, value) for lane, value in values.items()]


def _quantiles(values: dict[str, list[float]], label: str) -> list[tuple[dict[str, str], float]]:
    samples = []
    for key, found in sorted(values.items()):  # each list has a value: a key comes with its first
        for q in QUANTILES:
            samples.append(({label: key, "quantile": f"{q:g}"}, percentile(found, 100 * q) or 0.0))
    return samples


def database_down() -> list[Metric]:
    """What a scrape says while the database does not answer (the process itself does)."""
    return [Metric("colorlab_database_up", "1: the database answered this scrape.", [({}, 0.0)])]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(metrics: Iterable[Metric]) -> str:
    """Prometheus's text exposition format (version 0.0.4): HELP, TYPE gauge, one line per sample."""
    lines = []
    for metric in metrics:
        lines += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} gauge"]
        for labels, value in metric.samples:
            tags = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{metric.name}{{{tags}}} {value:.17g}" if tags else f"{metric.name} {value:.17g}")
    return "\n".join(lines) + "\n"
