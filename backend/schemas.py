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


class MethodOut(BaseModel):
    name: str = Field(examples=["cnn"])
    title: str
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


class JobOut(BaseModel):
    id: str
    method: str
    method_title: str
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
    urls: JobUrls


class ReferenceOut(BaseModel):
    id: str
    url: str
    label: str
    source: str = Field(examples=["upload", "example"])


class ErrorOut(BaseModel):
    detail: str = Field(examples=["not a supported image: the content is not one of PNG, JPEG, ..."])
