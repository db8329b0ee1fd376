"""Balanced assignment over 200 simulated participants: every condition within ±10% of the mean count in each
part, no photo twice for one participant within a part, attention checks flagged."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from backend.db import session_scope, statement_scope
from backend.study import builder
from backend.study import participants as service
from backend.study.models import ATTENTION, Participant, Study, Trial
from tests.conftest import statements_sent


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


def consent_twice_at_once(scope, slug: str, identity: service.Identity, browser: str | None = None):  # type: ignore[no-untyped-def]
    """Two consents of ``identity`` at the same instant, each in its own ``scope``: what each start gave."""
    barrier = threading.Barrier(2)
    started: list[service.Started] = []
    errors: list[BaseException] = []

    def consent() -> None:
        try:
            with scope() as s:
                study = builder.get_study(s, slug)
                barrier.wait()
                found = service.resolve(s, study, identity, None, browser=browser)
                started.append(service.start(s, study, identity, found, browser=browser))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=consent) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return started


@pytest.mark.parametrize("scope", [session_scope, statement_scope], ids=["transaction", "per-statement"])
def test_same_id_started_twice_at_once_makes_one_participant(database, make_study, scope) -> None:
    """Two consents for one Prolific attempt at the same instant: one participant and one set of trials; the
    request that lost the insert resumes the winner (it proves the same PROLIFIC_PID + SESSION_ID). Both in a
    transaction and statement by statement, as the participant routes run (db.statement_scope)."""
    slug = make_study(trials=(3, 3), photos=6)
    started = consent_twice_at_once(scope, slug, service.Identity("P-RACE", "prolific", "S1", "SESSION-1"))
    assert len({s.participant.id for s in started}) == 1
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 1
        assert s.scalar(select(func.count()).select_from(Trial)) == 6
        (only,) = s.scalars(select(Participant)).all()
        assert service.secret_matches(only, started[-1].secret)  # the last secret issued is the one kept


@pytest.mark.parametrize("scope", [session_scope, statement_scope], ids=["transaction", "per-statement"])
def test_one_browser_consenting_in_two_tabs_at_once_is_one_participant(database, make_study, scope) -> None:
    """An anonymous participant's two tabs press "I agree" at the same instant: one participant (a unique
    index per study and browser, 0013), the tab that lost the insert resumes it by the browser."""
    slug = make_study(trials=(3, 3), photos=6)
    anonymous = service.Identity(None, "anonymous")
    started = consent_twice_at_once(scope, slug, anonymous, browser="browser-hash-1")
    assert len({s.participant.id for s in started}) == 1
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 1


def test_participant_read_by_id_is_attached_as_loaded(database, make_study) -> None:
    """participant_by_id selects the row once; reading any attribute afterwards sends no SQL, and a change to
    it is written by the next commit like any loaded entity's."""
    slug = make_study()
    with session_scope() as s:
        study = builder.get_study(s, slug)
        pid = service.start(s, study, service.Identity("P-1", "url")).participant.id
    with session_scope() as s, statements_sent(s) as statements:
        participant = service.participant_by_id(s, pid)
        assert participant is not None and len(statements) == 1
        assert service.participant_by_id(s, pid) is participant
        values = {c.key: getattr(participant, c.key) for c in Participant.__table__.columns}
        assert values["external_id"] == "P-1" and values["started_at"] is None
        assert len(statements) == 2  # the second look-up's SELECT, no lazy loads
        participant.status = "excluded"
        s.commit()
    with session_scope() as s:
        assert s.get(Participant, pid).status == "excluded"
        assert service.participant_by_id(s, "no-such-id") is None


def test_statement_scope_commits_each_statement_and_a_start_is_all_or_nothing(
    database, make_study, monkeypatch
) -> None:
    """On PostgreSQL a statement in db.statement_scope is visible to others at once (no transaction around
    it: that is what spares the round trips); a start whose trials cannot be stored leaves no participant
    behind, as its participant and trials go in one statement (in one transaction on SQLite)."""
    slug = make_study()
    with statement_scope() as s:
        study = builder.get_study(s, slug)
        s.execute(update(Study).where(Study.id == study.id).values(title="T2"))
        if database == "postgres":
            with session_scope() as other:
                assert builder.get_study(other, slug).title == "T2"
    good = service.design(s, study)
    broken = service.Design.of(study, [r._replace(id="no-such-stimulus") for r in good.refs])
    monkeypatch.setattr(service, "design", lambda *_: broken)
    with statement_scope() as s, pytest.raises(IntegrityError):
        service.start(s, builder.get_study(s, slug), service.Identity("P-BROKEN", "url"))
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0
        assert s.scalar(select(func.count()).select_from(Trial)) == 0


def test_statement_scope_recovers_when_its_connections_are_cut(postgres_url, monkeypatch, tmp_path) -> None:
    """The participants' autocommit pool recovers from a database restart like the app's own: connections
    cut under it fail one request at most (OperationalError, which the web app answers with 503), then
    statements work again without a restart of the app."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from tests.conftest import apply_settings

    apply_settings(monkeypatch, DATA_DIR=tmp_path / "var", DATABASE_URL=postgres_url)
    with statement_scope() as s:
        assert s.scalar(text("SELECT 1")) == 1
    cut = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
    with session_scope() as admin:  # from the app's other pool: every other connection to this database
        admin.execute(text(cut + "AND pid <> pg_backend_pid()"))
    failures = 0
    for _ in range(3):
        try:
            with statement_scope() as s:
                assert s.scalar(text("SELECT 1")) == 1
        except OperationalError:
            failures += 1
    assert failures <= 1


def test_begin_marks_the_first_trial_shown_in_the_same_statement(database, make_study) -> None:
    """On PostgreSQL the instructions' start, the first trial's shown time and the read of the trials are one
    statement (two for the whole begin with the participant's look-up; four on SQLite). Either way the first
    trial, and only it, is marked shown (on PostgreSQL at the participant's start time itself)."""
    slug = make_study()
    with session_scope() as s:
        study = builder.get_study(s, slug)
        pid = service.start(s, study, service.Identity("P-BEGIN", "url")).participant.id
    with statement_scope() as s:
        study = builder.get_study(s, slug)
        with statements_sent(s) as statements:
            participant = service.participant_by_id(s, pid)
            assert participant is not None
            trials = service.begin(s, participant)
            state = service.state(s, study, participant, trials, grace_minutes=60.0)
    assert state["phase"] == "part1" and state["trial"]["index"] == 1
    trial_work = [x for x in statements if "FROM images" not in x]  # the image: once per process and image
    assert len(trial_work) == (2 if database == "postgres" else 4), trial_work
    with session_scope() as s:
        rows = s.scalars(
            select(Trial).where(Trial.participant_id == pid).order_by(Trial.part, Trial.position)
        )
        shown = [t.shown_at for t in rows]
        started = s.get(Participant, pid).started_at
    assert shown[0] is not None and started is not None and all(t is None for t in shown[1:])
    assert shown[0] == started if database == "postgres" else shown[0] >= started


def test_two_refreshes_at_once_make_one_display_copy(database, make_study, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The study page's refresh and "Open" at the same time: one display copy per result, not two with one
    left unused until the study is deleted."""
    from backend.config import get_settings
    from backend.models import Image
    from backend.study.models import Stimulus

    slug = make_study(photos=5, methods=("cnn",), open_=False)  # colorized, no display copy made yet
    with session_scope() as s:
        images_before = s.scalar(select(func.count()).select_from(Image))
        copies_to_make = s.scalar(
            select(func.count()).select_from(Stimulus).where(Stimulus.display_image_id.is_(None))
        )
        assert copies_to_make == 5  # the colorizations' (the real photos' are made with the study)
    real_store = builder.store_display
    calls: list[int] = []

    def other_view_first(session, rgb, max_side):  # type: ignore[no-untyped-def]
        if not calls:  # the other page view makes and commits its copy while this one is making its own
            calls.append(1)
            with session_scope() as other:
                builder.refresh(other, get_settings(), builder.get_study(other, slug))
        return real_store(session, rgb, max_side)

    monkeypatch.setattr(builder, "store_display", other_view_first)
    with session_scope() as s:
        readiness = builder.refresh(s, get_settings(), builder.get_study(s, slug))
        assert readiness.complete and calls
    with session_scope() as s:
        displays = s.scalars(select(Stimulus.display_image_id)).all()
        assert None not in displays and len(set(displays)) == len(displays)
        # one copy each: those of the view that was first; the other's were deleted, not left unused
        assert s.scalar(select(func.count()).select_from(Image)) == images_before + copies_to_make
