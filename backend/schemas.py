"""API shapes (Pydantic). Kept apart from the ORM tables on purpose."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ParamOut(BaseModel):
    name: str
    type: str
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: list[str] = []
    ends: list[str] = Field([], description="Plain-words labels of a slider's two ends (minimum, maximum).")


class PresetOut(BaseModel):
    name: str = Field(examples=["balanced"])
    label: str
    summary: str
    options: dict[str, Any]
    expected_seconds: float = Field(
        description="Expected compute time on this server for a typical photo (from recent jobs)."
    )


class MethodOut(BaseModel):
    name: str = Field(examples=["cnn"])
    title: str
    summary: str = Field(description="One line in plain words: what a person gets.")
    description: str
    params: list[ParamOut]
    needs_reference: bool
    iterative: bool
    batchable: bool
    available: bool
    unavailable_reason: str | None = Field(
        None, examples=["weights not fetched: run `colorlab weights fetch eccv16`"]
    )
    paper: str = ""
    default: bool = Field(False, description="The method used when a request names none.")
    presets: list[PresetOut] = []
    expected_seconds: float = Field(
        description="Expected compute time of one job with the default options, from recent jobs."
    )
    admin_hint: str | None = Field(
        None, description="For the administrator: the command that makes an unavailable method available."
    )


class JobCreated(BaseModel):
    id: str = Field(examples=["3q2kQy0m7sV9b1cXw8ZtJg"])
    status: str = Field(examples=["queued"])
    status_url: str = Field(examples=["/jobs/3q2kQy0m7sV9b1cXw8ZtJg"])
    result_url: str = Field(examples=["/jobs/3q2kQy0m7sV9b1cXw8ZtJg/result.png"])
    page_url: str = Field(examples=["/jobs/3q2kQy0m7sV9b1cXw8ZtJg/view"])


class ProgressOut(BaseModel):
    fraction: float = Field(0.0, ge=0, le=1)
    step: int | None = None
    total: int | None = None
    message: str | None = None
    losses: dict[str, float] = {}


class JobUrls(BaseModel):
    page: str
    input: str
    original: str
    reference: str | None = None
    result: str | None = None
    preview: str | None = None
    thumb: str | None = None  # small JPEG preview: of the result when there is one, else of the input


class QueueOut(BaseModel):
    lane: str = Field(examples=["fast"], description="fast (feed-forward) or iterative (exemplar).")
    ahead: int = Field(description="Queued jobs ahead of this one in its lane.")
    estimated_start: datetime | None = None
    estimated_finish: datetime | None = None
    estimated_run_seconds: float | None = None


class IterationsOut(BaseModel):
    run: int = Field(description="Iterations actually run so far (all of them once the job is done).")
    planned: int


class JobOut(BaseModel):
    id: str
    method: str
    method_title: str
    source_name: str | None = Field(None, description="The uploaded file's name (sanitised).")
    download_name: str = Field(description="File name of the result download: <original stem>-<method>.png")
    batch_id: str | None = None
    params: dict[str, Any]
    status: str = Field(examples=["running"])
    progress: ProgressOut
    attempts: int
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    queue_seconds: float | None = None
    run_seconds: float | None = None
    width: int
    height: int
    has_ground_truth: bool
    metrics: dict[str, float | None] | None = Field(
        None, description="Quality against the colour original (eq. 9 accuracy, AuC, PSNR, SSIM, CF)."
    )
    group_id: str | None = Field(None, description="The comparison this job belongs to, if any.")
    iterations: IterationsOut | None = Field(None, description="Iterative methods only.")
    queue: QueueOut | None = Field(None, description="Unfinished jobs: position in the lane and estimates.")
    urls: JobUrls


class ReferenceOut(BaseModel):
    id: str
    url: str
    label: str
    source: str = Field(examples=["upload", "example"])


class ErrorOut(BaseModel):
    detail: str = Field(examples=["not a supported image: the content is not one of PNG, JPEG, ..."])
