"""The web side's view of the colorization methods (torch-free) and the JSON form of a job."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from backend.config import Settings
from backend.models import Job, JobStatus
from worker.colorizers.catalogue import CATALOGUE, MethodInfo, validate_params

# Methods registered only for tests are hidden from the product (name prefix reserved for tests).
_HIDDEN_PREFIX = "_"


# Listing order: our default, the report's three nets, Zhang et al.'s, then the iterative exemplar.
_ORDER = ("unet-bins", "cnn", "fusion", "gan", "eccv16", "siggraph17", "exemplar")


def public_methods() -> list[MethodInfo]:
    shown = [m for m in CATALOGUE if not m.name.startswith(_HIDDEN_PREFIX)]
    return sorted(shown, key=lambda m: _ORDER.index(m.name) if m.name in _ORDER else len(_ORDER))


def default_method() -> str:
    return CATALOGUE.default_method


def get_method(name: str) -> MethodInfo | None:
    return CATALOGUE.get(name) if isinstance(name, str) else None


def validate(info: MethodInfo, raw: dict[str, Any]) -> dict[str, Any]:
    return validate_params(info, raw)


def methods_out(settings: Settings) -> list[dict[str, Any]]:
    out = []
    for m in public_methods():
        reason = m.unavailable_reason(settings.weights_dir)
        out.append(
            {
                "name": m.name,
                "title": m.title,
                "description": m.description,
                "params": [{**asdict(p), "choices": list(p.choices), "ends": list(p.ends)} for p in m.params],
                "needs_reference": m.needs_reference,
                "iterative": m.iterative,
                "batchable": m.batchable,
                "available": reason is None,
                "unavailable_reason": reason,
                "paper": m.paper,
                "default": m.default,
            }
        )
    return out


def _seconds(a: Any, b: Any) -> float | None:
    if a is None or b is None:
        return None
    return round(max((b - a).total_seconds(), 0.0), 3)


def job_dict(job: Job) -> dict[str, Any]:
    info = CATALOGUE.get(job.method)
    detail = job.progress_detail or {}
    base = f"/jobs/{job.id}"
    running = job.status == JobStatus.running
    preview_v = int(job.preview_at.timestamp() * 1000) if job.preview_at else 0
    return {
        "id": job.id,
        "method": job.method,
        "method_title": info.title if info else job.method,
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
