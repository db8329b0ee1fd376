"""Service endpoints for operators: ``GET /readyz`` and ``GET /metrics`` (the liveness check, ``/healthz``,
is in main)."""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from backend import service_metrics
from backend.config import Settings
from backend.db import session_scope
from backend.deps import SettingsDep
from backend.errors import UserError
from backend.schemas import RETRY_AFTER, errors

router = APIRouter(tags=["service"])
log = logging.getLogger(__name__)


def _readiness() -> tuple[bool, dict[str, str]]:
    """Whether this web process can serve uploads now: the database answers and its schema is this code's."""
    from backend import migrate

    try:
        behind = migrate.pending()
    except Exception as exc:  # away, or a URL it cannot use: not ready, said in words
        log.warning("GET /readyz: the database did not answer (%s)", exc.__class__.__name__)
        return False, {"status": "not ready", "database": "not answering"}
    if behind:
        return False, {"status": "not ready", "database": f"schema {behind}: run `colorlab migrate`"}
    return True, {"status": "ok", "database": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "Not ready: the database is away or its schema is behind this code's.",
            "headers": RETRY_AFTER,
        }
    },
    summary="Readiness: the database answers and its schema is current",
    description='`{"status": "ok", "database": "ok"}`, or 503 saying why not (`database`: "not answering", '
    "or the schema to migrate). For a load balancer's or an orchestrator's readiness check; `/healthz` "
    "is the liveness check (the process answers; the database is not asked).",
)
async def readyz() -> Response:
    ready, body = await run_in_threadpool(_readiness)
    headers = {"Cache-Control": "no-store"} | ({} if ready else {"Retry-After": "5"})
    return JSONResponse(body, status_code=200 if ready else 503, headers=headers)


def _scrape(settings: Settings) -> str:
    try:
        # the web threads' pool: statement_scope's is the study participants' alone, sized for their threads
        with session_scope() as session:
            return service_metrics.render(service_metrics.collect(session, settings))
    except DBAPIError:  # the database is away: say so (a 503 would read as "the service is down")
        log.warning("GET /metrics: the database did not answer")
        return service_metrics.render(service_metrics.database_down())


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {service_metrics.CONTENT_TYPE: {}}, "description": "Prometheus text format."},
        **errors(401, 404),
    },
    summary="The service's state for a monitoring system",
    description="Jobs waiting and running per lane and the oldest one's wait, running jobs whose worker "
    "went quiet, the last hour's outcomes per method and their compute and wait times (quantiles), the "
    "webhook calls pending, delivered and given up (`colorlab_webhook_calls`) and how long the most overdue "
    "has been due (`colorlab_overdue_webhook_seconds`), and whether the database answered, read from the "
    "database that every process shares. Needs "
    "`Authorization: Bearer <METRICS_TOKEN>` when that is set; without it, open in development and absent "
    "(404) in production.",
)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    token = settings.metrics_token.get_secret_value()
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise UserError(401, "send the metrics token: Authorization: Bearer <METRICS_TOKEN>",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    elif settings.environment == "production":
        raise UserError(404, "Not Found")
    body = await run_in_threadpool(_scrape, settings)
    return Response(body, media_type=service_metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
