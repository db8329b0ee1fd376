"""Exports that match and explain themselves (README, "Exports and codebook"), draws without a per-study lock:
every export read back and checked against the database and the JSON export; concurrent starts stay
balanced."""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from collections import Counter
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.db import session_scope
from backend.models import ID_ALPHABET, new_id, random_string
from backend.study import builder, export
from backend.study import participants as service
from backend.study.models import Participant, Trial
from tests.backend.study.conftest import login


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _as_csv(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_exports_read_back_match_the_database_and_json(app_client, make_study) -> None:
    slug = make_study(trials=(3, 2), photos=4, methods=("cnn", "fusion"), attention=True)
    c = app_client
    done = TestClient(c.app, client=("10.0.0.1", 1))
    done.post(
        f"/study/{slug}/api/start", json={"participant": "complete-1"}, headers={"user-agent": "UA,-2+3"}
    )
    state = done.post(f"/study/{slug}/api/begin", json={}).json()
    while state["phase"] in ("part1", "part2"):
        body = {"response": "fake"} if state["trial"]["part"] == 1 else {"rating": 2}
        state = done.post(
            f"/study/{slug}/api/answer", json={"trial_id": state["trial"]["id"], "response_ms": 700, **body}
        ).json()
    partial = TestClient(c.app, client=("10.0.0.2", 1))
    partial.post(f"/study/{slug}/api/start", json={"participant": "@SUM-2+3"})
    state = partial.post(f"/study/{slug}/api/begin", json={}).json()
    partial.post(f"/study/{slug}/api/answer", json={"trial_id": state["trial"]["id"], "response": "real"})
    login(c)

    for kind in ("trials", "participants", "stimuli", "summary", "comparisons"):
        rows_csv = _csv(c.get(f"/admin/studies/{slug}/export/{kind}.csv").text)
        rows_json = c.get(f"/admin/studies/{slug}/export/{kind}.json").json()
        if kind == "summary":
            rows_json = [
                {
                    "condition": cond["condition"],
                    "part1_n": cond["part1"]["n"],
                    "part2_n": cond["part2"]["n"],
                    "rating_low": cond["part2"]["low"],
                }
                for cond in rows_json["conditions"]
            ]
        assert len(rows_csv) == len(rows_json) > 0, kind
        # every column is described in the codebook
        assert set(rows_csv[0]) <= set(export.CODEBOOK[kind]), kind
        for row_csv, row_json in zip(rows_csv, rows_json, strict=True):
            for column, value in row_json.items():
                expected = _as_csv(value)
                if column in ("external_id", "user_agent") and expected[:1] in "=+-@":
                    expected = "'" + expected
                if column == "user_agent" and value == "UA,-2+3":
                    expected = "'UA,'-2+3"  # neutralised after the comma too
                if column == "rating_low" and value is not None:
                    assert float(row_csv[column]) == value
                    continue
                assert row_csv[column] == expected, (kind, column, row_csv[column], value)

    trials = _csv(c.get(f"/admin/studies/{slug}/export/trials.csv").text)
    with session_scope() as s:
        db_trials = {t.id: t for t in s.scalars(select(Trial))}
        db_people = {p.id: p for p in s.scalars(select(Participant))}
    assert len(trials) == len(db_trials)
    by_key = {(t.participant_id, t.part, t.position + 1): t for t in db_trials.values()}
    for row in trials:
        t = by_key[(row["participant"], int(row["part"]), int(row["trial_index"]))]
        assert row["stimulus"] == t.stimulus_id and row["photo"] == t.photo_id  # ids unchanged by the guard
        assert row["answered"] == _as_csv(t.answered_at is not None)
        assert row["response"] == _as_csv(t.response) and row["rating"] == _as_csv(t.rating)
        assert row["participant_status"] == db_people[t.participant_id].status
        for column in ("shown_at", "answered_at"):
            stamp = getattr(t, column)
            if stamp is None:
                assert row[column] == ""
            else:
                assert row[column].endswith("Z")
                parsed = datetime.fromisoformat(row[column].replace("Z", "+00:00"))
                aware = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
                assert abs((parsed - aware).total_seconds()) < 0.001
    unanswered = [r for r in trials if r["answered"] == "false"]
    assert unanswered and all(r["external_id"] == "'@SUM-2+3" for r in unanswered)

    codebook = _csv(c.get(f"/admin/studies/{slug}/export/codebook.csv").text)
    described = {(r["file"], r["column"]) for r in codebook}
    for kind, columns in (
        ("trials", export.TRIAL_COLUMNS),
        ("participants", export.PARTICIPANT_COLUMNS),
        ("stimuli", export.STIMULUS_COLUMNS),
        ("summary", export.SUMMARY_COLUMNS),
        ("comparisons", export.COMPARISON_COLUMNS),
    ):
        assert {(f"{kind}.csv", col) for col in columns} <= described, kind
    archive = zipfile.ZipFile(io.BytesIO(c.get(f"/admin/studies/{slug}/export/all.zip").content))
    names = set(archive.namelist())
    assert {"trials.csv", "participants.json", "codebook.csv", "summary.json", "comparisons.csv"} <= names
    pairs = _csv(archive.read("comparisons.csv").decode())  # real, cnn, fusion: three pairs, in that order
    assert [(r["condition_a"], r["condition_b"]) for r in pairs] == [
        ("real", "cnn"),
        ("real", "fusion"),
        ("cnn", "fusion"),
    ]
    assert archive.read("trials.csv").decode() == c.get(f"/admin/studies/{slug}/export/trials.csv").text


def test_ids_never_start_with_a_formula_character_and_the_guard() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert all(i.isalnum() and len(i) == 22 for i in ids) and len(set(ids)) == len(ids)
    # every character of the alphabet equally likely, in every position (440,000 draws of 62: ±5 %)
    counts = Counter("".join(ids))
    assert set(counts) == set(ID_ALPHABET) and max(counts.values()) / min(counts.values()) < 1.12
    assert len({i[0] for i in ids}) == 62 and len({i[-1] for i in ids}) == 62
    receipts = "".join(random_string(service.RECEIPT_ALPHABET, 8) for _ in range(5_000))
    assert set(receipts) == set(service.RECEIPT_ALPHABET) and len(receipts) == 40_000
    assert all(export.neutralise(i) == i for i in ids)
    assert export.neutralise("Mozilla/5.0;=1+1") == "'Mozilla/5.0;'=1+1"
    assert export.neutralise("a\t@SUM(1)") == "'a\t'@SUM(1)"
    assert export.neutralise("a, -1") == "'a, '-1"
    assert export.neutralise("-3") == "'-3" and export.neutralise("plain, text") == "plain, text"
    assert export.neutralise(-3) == -3


def test_concurrent_starts_are_balanced_without_a_study_lock(database, make_study) -> None:
    slug = make_study(trials=(4, 4), photos=6, methods=("cnn", "fusion"))
    errors: list[BaseException] = []
    barrier = threading.Barrier(12)

    def participant(i: int) -> None:
        try:
            barrier.wait()
            for j in range(4):
                with session_scope() as s:
                    study = builder.get_study(s, slug)
                    service.start(s, study, service.Identity(f"c-{i}-{j}", "url"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=participant, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with session_scope() as s:
        seqs = sorted(s.scalars(select(Participant.seq)))
        trials = s.scalars(select(Trial)).all()
    assert seqs == list(range(48))  # every participant got its own place in the design
    from collections import Counter

    for part in (1, 2):
        shown = Counter(t.stimulus_id for t in trials if t.part == part)
        assert len(shown) == 18 and max(shown.values()) - min(shown.values()) <= 1, shown
        per_person: dict[str, list[Trial]] = {}
        for t in trials:
            if t.part == part:
                per_person.setdefault(t.participant_id, []).append(t)
        for ts in per_person.values():
            assert len({t.photo_id for t in ts}) == 4 and len({t.condition for t in ts}) == 3
