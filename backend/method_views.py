"""The web side's view of the colorization methods (torch-free: :mod:`worker.colorizers.methods`) and the
JSON form of a job."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from backend import estimates
from backend.config import Settings
from backend.models import Job, JobStatus
from worker.colorizers import methods
from worker.colorizers.method_info import MethodInfo, validate_params


def public_methods() -> list[MethodInfo]:
    """The methods, in display order."""
    return list(methods.METHODS)


def default_method() -> str:
    return methods.default_method().name


def get_method(name: str) -> MethodInfo | None:
    return methods.get(name) if isinstance(name, str) else None


def validate(info: MethodInfo, raw: dict[str, Any]) -> dict[str, Any]:
    return validate_params(info, raw)


def result_stem(source_name: str | None, job_id: str) -> str:
    """The stem of a result's file name: the upload's own stem, made safe for any file system."""
    stem = (source_name or "").rsplit(".", 1)[0] if "." in (source_name or "")[1:] else (source_name or "")
    safe = re.sub(r"[^\w.-]+", "-", stem).strip(".-_")[:100]
    return safe or f"photo-{job_id[:8]}"


def download_name(job: Job, ext: str = "png") -> str:
    return f"{result_stem(job.source_name, job.id)}-{job.method}.{ext}"


def methods_out(settings: Settings, session: Session | None = None) -> list[dict[str, Any]]:
    """The methods as GET /methods lists them (without a session: the benchmarked time estimates)."""
    out = []
    for m in public_methods():
        reason = m.unavailable_reason(settings.weights_dir)
        weight_names = " ".join(w.name for w in m.weights)
        defaults = m.defaults()
        presets = [
            {
                "name": p.name,
                "label": p.label,
                "summary": p.summary,
                "options": dict(p.options),
                "expected_seconds": estimates.expected_seconds(session, m.name, {**defaults, **p.options}),
            }
            for p in m.presets
        ]
        out.append(
            {
                "name": m.name,
                "title": m.title,
                "summary": m.summary or m.title,
                "description": m.description,
                "params": [{**asdict(p), "choices": list(p.choices), "ends": list(p.ends)} for p in m.params],
                "needs_reference": m.needs_reference,
                "iterative": m.iterative,
                "batchable": m.batchable,
                "available": reason is None,
                "unavailable_reason": reason,
                "paper": m.paper,
                "default": m.default,
                "presets": presets,
                "expected_seconds": estimates.expected_seconds(session, m.name, defaults),
                "admin_hint": f"colorlab weights fetch {weight_names}" if reason else None,
            }
        )
    return out


def _seconds(a: Any, b: Any) -> float | None:
    if a is None or b is None:
        return None
    return round(max((b - a).total_seconds(), 0.0), 3)


def _iterations(info: MethodInfo | None, job: Job) -> dict[str, int] | None:
    if info is None or info.planned_iterations is None:
        return None
    detail = job.progress_detail or {}
    planned = int(detail.get("total") or info.iterations_for(job.params or {}) or 0)
    run = int(detail.get("step") or 0) or (planned if job.status == JobStatus.done else 0)
    return {"run": run, "planned": planned}


def job_dict(job: Job, queue: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON form of a job; ``queue`` (see :func:`estimates.queue_info`) when the caller computed it."""
    info = methods.get(job.method)
    detail = job.progress_detail or {}
    base = f"/jobs/{job.id}"
    running = job.status == JobStatus.running
    preview_v = int(job.preview_at.timestamp() * 1000) if job.preview_at else 0
    return {
        "id": job.id,
        "method": job.method,
        "method_title": info.title if info else job.method,
        "source_name": job.source_name,
        "download_name": download_name(job),
        "batch_id": job.batch_id,
        "params": job.params or {},
        "status": job.status,
        "progress": {
            "fraction": 1.0 if job.status == JobStatus.done else max(0.0, min(1.0, job.progress or 0.0)),
            "step": detail.get("step"),
            "total": detail.get("total"),
            "message": detail.get("message"),
            "losses": detail.get("losses") or {},
        },
        "attempts": job.attempts,
        "error": job.error if job.status in (JobStatus.failed, JobStatus.queued) else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "queue_seconds": _seconds(job.created_at, job.started_at),
        "run_seconds": job.run_seconds,
        "width": job.input_image.width,
        "height": job.input_image.height,
        "has_ground_truth": job.input_image.is_color,
        "metrics": job.metrics,
        "group_id": job.group_id,
        "iterations": _iterations(info, job),
        "queue": queue,
        "urls": {
            "page": f"{base}/view",
            "input": f"{base}/input.png",
            "original": f"{base}/original.png",
            "reference": f"{base}/reference.png" if job.reference_image_id else None,
            "result": f"{base}/result.png" if job.result_image_id else None,
            "thumb": f"{base}/thumb.jpg?of={'result' if job.result_image_id else 'input'}",
            "preview": f"{base}/preview.png?v={preview_v}" if running and job.preview_at else None,
        },
    }
