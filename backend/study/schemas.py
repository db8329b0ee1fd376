"""JSON shapes of the participant API (Pydantic), kept apart from the ORM tables."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    PROLIFIC_PID: str | None = Field(None, max_length=128)
    STUDY_ID: str | None = Field(None, max_length=128)
    SESSION_ID: str | None = Field(None, max_length=128)
    participant: str | None = Field(None, max_length=128)


class BeginIn(BaseModel):
    """No fields: the instructions were read (send ``{}``)."""

    model_config = ConfigDict(extra="forbid")


class AnswerIn(BaseModel):
    # strict: a JSON true is not 1 star, nor "12" a number of milliseconds
    model_config = ConfigDict(extra="forbid", strict=True)
    trial_id: str = Field(max_length=32, description="The id of the trial on screen (from the state).")
    response: Literal["real", "fake"] | None = Field(None, description="Part 1: real photo or colorized.")
    rating: int | None = Field(None, ge=1, le=4, description="Part 2: 1-4 stars.")
    response_ms: int | None = Field(
        None, ge=0, le=3_600_000, description="Milliseconds from image shown to answer."
    )


class TrialOut(BaseModel):
    id: str
    part: int
    index: int
    total: int
    image_url: str = Field(description="The trial's image (JPEG), for this participant's session only.")
    image: str | None = Field(
        None,
        description="The same image inline, as a data: URL, so that a page shows the trial without a second "
        "request (one round trip per answer instead of two).",
    )
    instruction: str | None = None


class ParticipantProgressOut(BaseModel):
    answered: int
    total: int


class StateOut(BaseModel):
    study: str
    title: str
    phase: Literal["consent", "closed", "resume", "instructions", "part1", "part2", "done"]
    trial: TrialOut | None = None
    progress: ParticipantProgressOut | None = None
    completion_code: str | None = None
    receipt: str | None = None
    redirect_url: str | None = None
    return_url: str | None = None
    preview: bool = False
    duplicate: bool = False
