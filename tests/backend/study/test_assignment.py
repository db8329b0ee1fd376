"""Balanced assignment over 200 simulated participants: every condition within ±10% of the mean count in each
part, no photo twice for one participant within a part, attention checks flagged."""

from __future__ import annotations

import random
from collections import Counter

from sqlalchemy import select

from backend.db import session_scope
from backend.study import builder, service
from backend.study.models import ATTENTION, Trial


def test_balance_over_200_participants(sqlite_db, make_study) -> None:
    slug = make_study(photos=8, methods=("cnn", "fusion", "gan"), attention=True)
    rng = random.Random(7)
    with session_scope() as s:
        study = builder.get_study(s, slug)
        for i in range(200):
            service.start(s, study, service.Identity(f"sim-{i}", "url"), None, rng=rng)
    with session_scope() as s:
        trials = s.scalars(select(Trial)).all()
    assert len(trials) == 200 * (5 + 5 + 2)
    for part in (1, 2):
        counts = Counter(t.condition for t in trials if t.part == part and not t.is_attention)
        assert set(counts) == {"real", "cnn", "fusion", "gan"}
        mean = sum(counts.values()) / len(counts)
        assert all(abs(n - mean) <= 0.10 * mean for n in counts.values()), counts
        stimuli = Counter(t.stimulus_id for t in trials if t.part == part and not t.is_attention)
        assert max(stimuli.values()) - min(stimuli.values()) <= 2, stimuli  # least-shown stimulus first
    by_participant: dict[tuple[str, int], list[Trial]] = {}
    for t in trials:
        by_participant.setdefault((t.participant_id, t.part), []).append(t)
    for (_pid, part), ts in by_participant.items():
        photos = [t.photo_id for t in ts if not t.is_attention]
        assert len(photos) == len(set(photos)) == 5  # no photo twice within a part
        checks = [t for t in ts if t.is_attention]
        assert len(checks) == 1 and checks[0].condition == ATTENTION
        assert checks[0].expected == ("fake" if part == 1 else checks[0].expected)
        assert sorted(t.position for t in ts) == list(range(6))
        # each participant sees every condition at least once per part (5 trials, 4 conditions)
        assert len({t.condition for t in ts if not t.is_attention}) == 4


def test_photos_must_cover_the_trials(sqlite_db) -> None:
    import pytest

    from backend.config import get_settings
    from backend.errors import UserError
    from tests.backend.study.conftest import photo_files

    spec = builder.StudySpec(title="Too few", methods=["cnn"], trials_part1=5, trials_part2=5)
    with session_scope() as s, pytest.raises(UserError) as err:
        builder.build_study(s, get_settings(), spec, photo_files(3), check_available=False)
    assert err.value.status_code == 422 and "at least 5 photos" in err.value.detail


def test_failed_colorizations_can_be_retried(sqlite_db, make_study) -> None:
    from backend.config import get_settings
    from backend.models import Job, JobStatus
    from backend.study.models import Stimulus

    slug = make_study(photos=5, methods=("cnn",), open_=False)
    with session_scope() as s:
        study = builder.get_study(s, slug)
        stim = s.scalars(select(Stimulus).where(Stimulus.condition == "cnn")).first()
        stim.display_image_id = None
        old_job = s.get(Job, stim.job_id)
        old_job.status, old_job.error = JobStatus.failed, "out of memory"
        s.commit()
        readiness = builder.refresh(s, get_settings(), study)
        assert readiness.failed == 1 and "out of memory" in readiness.message()
        new_ids = builder.retry_failed(s, study)
        assert len(new_ids) == 1 and new_ids[0] != old_job.id
        assert s.get(Job, new_ids[0]).status == JobStatus.queued
        assert builder.refresh(s, get_settings(), study).queued == 1


def test_refresh_within_a_time_budget(sqlite_db, make_study) -> None:
    from sqlalchemy import update

    from backend.config import get_settings
    from backend.study.models import Stimulus

    slug = make_study(photos=5, methods=("cnn",), open_=False)
    with session_scope() as s:
        study = builder.get_study(s, slug)
        s.execute(update(Stimulus).where(Stimulus.condition == "cnn").values(display_image_id=None))
        s.commit()
        quick = builder.refresh(s, get_settings(), study, budget_s=0.0)
        assert quick.preparing == 5 and not quick.complete and "being prepared" in quick.message()
        assert builder.open_study(s, get_settings(), study).complete  # opening makes every copy
