"""ORM tables of the user study (report §6): studies, their photos and stimuli, participants and trials.

Storage only; the JSON shapes the routes answer with live in ``backend.study.schemas``. The schema is owned
by Alembic (revision 0002).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.models import Base, Image, Job, new_id, utcnow

REAL = "real"  # the condition of a photo's own colour image
ATTENTION = "attention"  # the condition of attention-check stimuli (an obviously gray image)


def parts_of(trials_part1: int | None, trials_part2: int | None) -> tuple[int, ...]:
    """The parts a study with these trial counts has: 1 (real or colorized), 2 (stars) or both. A count of
    0 leaves its part out; an unset one (None) is the column default, 5."""
    return tuple(part for part, n in ((1, trials_part1), (2, trials_part2)) if n != 0)


class StudyStatus(enum.StrEnum):
    draft = "draft"  # built, stimuli may still be colorizing
    open = "open"
    closed = "closed"


class Study(Base):
    __tablename__ = "studies"
    __table_args__ = (UniqueConstraint("slug", name="uq_studies_slug"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    consent_text: Mapped[str] = mapped_column(Text, default="")
    methods: Mapped[list[str]] = mapped_column(JSON, default=list)
    trials_part1: Mapped[int] = mapped_column(Integer, default=5)
    trials_part2: Mapped[int] = mapped_column(Integer, default=5)
    completion_code: Mapped[str | None] = mapped_column(String(100))
    redirect_url: Mapped[str | None] = mapped_column(String(500))
    attention_checks: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=StudyStatus.draft)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    # Participants started so far: an atomic counter that places each new one in the balanced design.
    participant_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Version of the consent/instructions texts participants see now (0: a draft, not versioned yet).
    texts_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def conditions(self) -> list[str]:
        return [REAL, *self.methods]

    @property
    def parts(self) -> tuple[int, ...]:
        """The parts the study has (:func:`parts_of`)."""
        return parts_of(self.trials_part1, self.trials_part2)

    def answers_until(self, grace_minutes: float) -> datetime | None:
        """A closed study: until when those who had started may still answer (STUDY_CLOSE_GRACE_MINUTES after
        closing); None for a study that is not closed."""
        if self.status != StudyStatus.closed or self.closed_at is None:
            return None
        return self.closed_at + timedelta(minutes=grace_minutes)


class StudyTexts(Base):
    """A study's participant-facing texts from one version on (versions start when the study opens)."""

    __tablename__ = "study_text_versions"
    __table_args__ = (UniqueConstraint("study_id", "version", name="uq_study_text_versions"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    consent_text: Mapped[str] = mapped_column(Text)
    instructions: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StudyPhoto(Base):
    """One test photo: its real colour image and the gray version the methods colorize."""

    __tablename__ = "study_photos"
    __table_args__ = (UniqueConstraint("study_id", "position", name="uq_study_photos_position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id"))
    gray_image_id: Mapped[str] = mapped_column(ForeignKey("images.id"))


class Stimulus(Base):
    """What a participant may be shown: a photo under one condition (real, a method, an attention check)."""

    __tablename__ = "study_stimuli"
    __table_args__ = (
        UniqueConstraint("study_id", "photo_id", "condition", name="uq_study_stimuli_condition"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    photo_id: Mapped[str] = mapped_column(ForeignKey("study_photos.id", ondelete="CASCADE"))
    condition: Mapped[str] = mapped_column(String(64))  # "real", a method name, or "attention"
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))  # the colorization (method conditions)
    source_image_id: Mapped[str | None] = mapped_column(
        ForeignKey("images.id")
    )  # full resolution, when known
    display_image_id: Mapped[str | None] = mapped_column(ForeignKey("images.id"))  # what participants see

    job: Mapped[Job | None] = relationship(foreign_keys=[job_id])
    photo: Mapped[StudyPhoto] = relationship(foreign_keys=[photo_id])
    display_image: Mapped[Image | None] = relationship(foreign_keys=[display_image_id])


class ParticipantStatus(enum.StrEnum):
    active = "active"
    excluded = "excluded"  # kept, marked, left out of the results
    returned = "returned"  # gave up (Prolific: returned the submission)
    timed_out = "timed_out"


class Participant(Base):
    __tablename__ = "study_participants"
    __table_args__ = (
        UniqueConstraint("study_id", "external_id", name="uq_study_participants_external"),
        Index("ix_study_participants_browser", "study_id", "browser"),
        # One anonymous participant per browser and study: two tabs consenting at once made two (0013)
        Index(
            "uq_study_participants_anonymous_browser",
            "study_id",
            "browser",
            unique=True,
            postgresql_where=text("source = 'anonymous' AND NOT is_preview"),
            sqlite_where=text("source = 'anonymous' AND NOT is_preview"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # Indexed as the leading column of uq_study_participants_external.
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(
        String(128)
    )  # PROLIFIC_PID, `participant`, or anonymous random id
    source: Mapped[str] = mapped_column(String(16))  # prolific | url | anonymous
    prolific_study_id: Mapped[str | None] = mapped_column(String(128))
    prolific_session_id: Mapped[str | None] = mapped_column(String(128))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    consented_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()  # instructions read
    completed_at: Mapped[datetime | None] = mapped_column()
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    secret_hash: Mapped[str | None] = mapped_column(String(64))  # sha256 of the session secret (cookie)
    browser: Mapped[str | None] = mapped_column(String(64))  # hash of the browser cookie (one per study)
    receipt: Mapped[str | None] = mapped_column(String(16))  # per-participant part of the completion code
    status: Mapped[str] = mapped_column(
        String(16), default=ParticipantStatus.active, server_default=ParticipantStatus.active.value
    )
    is_preview: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    texts_version: Mapped[int | None] = mapped_column(Integer)  # the texts this participant consented to
    seq: Mapped[int | None] = mapped_column(Integer)  # place in the balanced design (None: preview)


class Trial(Base):
    """One image shown to one participant, and the answer (filled once, the moment it is given)."""

    __tablename__ = "study_trials"
    __table_args__ = (
        UniqueConstraint("participant_id", "part", "position", name="uq_study_trials_slot"),
        Index("ix_study_trials_study_part_condition", "study_id", "part", "condition"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    # Indexed as the leading column of uq_study_trials_slot (which also orders a participant's trials).
    participant_id: Mapped[str] = mapped_column(ForeignKey("study_participants.id", ondelete="CASCADE"))
    part: Mapped[int] = mapped_column(SmallInteger)  # 1: real or colorized; 2: stars
    position: Mapped[int] = mapped_column(SmallInteger)  # 0-based within the part
    stimulus_id: Mapped[str] = mapped_column(ForeignKey("study_stimuli.id"))
    photo_id: Mapped[str] = mapped_column(ForeignKey("study_photos.id"))
    condition: Mapped[str] = mapped_column(String(64))
    is_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    expected: Mapped[str | None] = mapped_column(String(16))  # attention checks: the instructed answer
    response: Mapped[str | None] = mapped_column(String(8))  # part 1: "real" | "fake"
    rating: Mapped[int | None] = mapped_column(SmallInteger)  # part 2: 1..4
    response_ms: Mapped[int | None] = mapped_column(Integer)  # measured in the browser
    shown_at: Mapped[datetime | None] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()

    @property
    def correct(self) -> bool | None:
        """Part 1: whether the answer is right (real image judged real, or colorized judged colorized)."""
        if self.part != 1 or self.response is None:
            return None
        truth = "real" if self.condition == REAL else "fake"
        return self.response == truth

    @property
    def attention_passed(self) -> bool | None:
        if not self.is_attention or self.answered_at is None:
            return None
        given = self.response if self.part == 1 else str(self.rating)
        return given == self.expected


class AdminSessionRow(Base):
    """A researcher's login: the cookie names it, logging out revokes it here (server side)."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's token
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class LoginThrottle(Base):
    """Login attempts per client address in the current window, shared by every web process."""

    __tablename__ = "login_throttle"

    client: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_start: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer)
