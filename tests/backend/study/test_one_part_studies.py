"""Studies of one part: a real-vs-fake survey only (0 trials in part 2, the report's Fig. 16) or a rating
study only (0 trials in part 1, Fig. 17), end to end on SQLite and PostgreSQL: building (either part may be 0,
not both), the balanced draw and attention checks of that part only, the participant's page and API (nothing
names the part that is not there), the results page (that part's chart and columns only) and the exports (the
other part's columns empty, as the codebook says)."""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from backend.config import get_settings
from backend.db import session_scope
from backend.errors import UserError
from backend.study import builder
from backend.study.models import Participant, Study, Trial
from tests.backend.study.conftest import csrf_of, login, photo_paths
from tests.conftest import method_available

PART1_COLUMNS = ["part1_n", "part1_participants", "judged_real", "share_real", "share_correct"]
PART2_COLUMNS = [
    "part2_n",
    "part2_participants",
    "mean_rating",
    "rating_sd",
    *(f"stars_{k}" for k in range(1, 5)),
]


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _spec(trials: tuple[int, int], **extra: object) -> builder.StudySpec:
    return builder.StudySpec(
        title="One part", methods=["cnn"], trials_part1=trials[0], trials_part2=trials[1], **extra
    )  # type: ignore[arg-type]


def _take_part(client, slug: str, who: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """One participant through the study by the API (always "fake", always 2 stars, or the instructed
    answer of an attention check); returns every state seen."""
    client.cookies.clear()
    states = [client.post(f"/study/{slug}/api/start", json={"participant": who}).json()]
    assert states[-1]["phase"] == "instructions"
    states.append(client.post(f"/study/{slug}/api/begin", json={}).json())
    while states[-1]["phase"] in ("part1", "part2"):
        trial = states[-1]["trial"]
        answer = {"response": "fake"} if trial["part"] == 1 else {"rating": 2}
        if trial["instruction"]:  # "please choose N stars"
            answer = {"rating": int(trial["instruction"].split("choose ")[1][0])}
        res = client.post(f"/study/{slug}/api/answer", json={"trial_id": trial["id"], **answer})
        assert res.status_code == 200, res.text
        states.append(res.json())
    return states


def test_either_part_may_be_left_out_but_not_both(sqlite_db) -> None:
    settings = get_settings()
    for trials in ((3, 0), (0, 3), (50, 0)):
        checked = builder.validate_spec(_spec(trials), settings, check_available=False)
        assert (checked.trials_part1, checked.trials_part2) == trials
    with pytest.raises(UserError) as neither:
        builder.validate_spec(_spec((0, 0)), settings, check_available=False)
    assert neither.value.status_code == 422
    assert "a study needs trials in at least one part" in neither.value.detail
    for trials, part in (((-1, 5), 1), ((5, 51), 2), ((True, 5), 1)):
        with pytest.raises(UserError) as bad:
            builder.validate_spec(_spec(trials), settings, check_available=False)  # type: ignore[arg-type]
        assert bad.value.status_code == 422
        assert f"trials in part {part} must be a whole number from 0 to 50" in bad.value.detail
    # The standard instructions (as the new-study form prefills them, or empty) never name a missing part;
    # a researcher's own text is kept.
    survey = builder.validate_spec(
        _spec((3, 0), instructions=builder.DEFAULT_INSTRUCTIONS), settings, check_available=False
    )
    assert survey.instructions == builder.DEFAULT_INSTRUCTIONS_PART1 and "Part 2" not in survey.instructions
    rating = builder.validate_spec(_spec((0, 3), instructions=""), settings, check_available=False)
    assert (
        rating.instructions == builder.DEFAULT_INSTRUCTIONS_PART2 and "real photo" not in rating.instructions
    )
    own = builder.validate_spec(_spec((0, 3), instructions="Rate them."), settings, check_available=False)
    assert own.instructions == "Rate them."
    both = builder.validate_spec(_spec((3, 3), instructions=""), settings, check_available=False)
    assert both.instructions == builder.DEFAULT_INSTRUCTIONS  # two parts: as before


def test_the_command_line_and_the_form_take_one_part(sqlite_client, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in photo_paths(3):
        shutil.copy(p, folder / p.name)
    runner = CliRunner()
    from backend.cli import main

    create = ["study", "create", "--title", "T", "--photos", str(folder), "--methods", "cnn"]
    res = runner.invoke(main, [*create, "--trials", "0", "0"])
    assert res.exit_code == 2 and "a study needs trials in at least one part" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1  # one clean line, no traceback
    if method_available("cnn"):
        res = runner.invoke(main, [*create, "--trials", "3", "0", "--slug", "survey-cli"])
        assert res.exit_code == 0, res.output
        assert "3 real-or-colorized trials" in res.output and "star" not in res.output
        with session_scope() as s:
            made = builder.get_study(s, "survey-cli")
            assert made is not None and (made.trials_part1, made.trials_part2) == (3, 0)

    c = sqlite_client
    login(c)
    new = c.get("/admin/studies/new").text
    assert new.count('min="0" max="50"') == 2 and "0 leaves a part out" in new
    monkeypatch.setattr(
        builder,
        "validate_spec",
        lambda spec, settings, check_available=True, _real=builder.validate_spec: _real(
            spec, settings, check_available=False
        ),
    )
    form = {
        "csrf_token": csrf_of(new),
        "title": "Rating only",
        "slug": "rating-web",
        "methods": ["cnn"],
        "instructions": builder.DEFAULT_INSTRUCTIONS,  # as the form prefills it
    }
    photos = io.BytesIO()
    with zipfile.ZipFile(photos, "w") as archive:
        for p in photo_paths(2):
            archive.writestr(p.name, p.read_bytes())
    upload = {"archive": ("photos.zip", photos.getvalue(), "application/zip")}
    neither = c.post("/admin/studies", data={**form, "trials_part1": "0", "trials_part2": "0"}, files=upload)
    assert neither.status_code == 422 and "a study needs trials in at least one part" in neither.text
    made = c.post(
        "/admin/studies",
        data={**form, "trials_part1": "0", "trials_part2": "2"},
        files=upload,
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    with session_scope() as s:
        study = builder.get_study(s, "rating-web")
        assert study is not None and study.instructions == builder.DEFAULT_INSTRUCTIONS_PART2
    page = c.get("/admin/studies/rating-web").text
    assert "2 trials, star ratings only" in page
    assert "(stars only)" in c.get("/admin").text
    # An emptied instructions text is the standard one of the study's part, not of both parts.
    texts = c.post(
        "/admin/studies/rating-web/texts",
        data={"csrf_token": csrf_of(page), "title": "Rating only", "consent_text": "", "instructions": ""},
        follow_redirects=False,
    )
    assert texts.status_code == 303
    with session_scope() as s:
        assert builder.get_study(s, "rating-web").instructions == builder.DEFAULT_INSTRUCTIONS_PART2


def test_a_survey_only_study_end_to_end(app_client, make_study) -> None:
    c = app_client
    slug = make_study(trials=(3, 0), photos=4, methods=("cnn",), attention=True)
    page = c.get(f"/study/{slug}").text
    # The participant's page names no part 2: no part-2 intro, no "Part N" label, no star keys.
    assert 'id="phase-part2-intro"' not in page and 'id="trial-part"' not in page
    assert "Begin part 1" not in page and ">Begin</button>" in page
    assert "You will see 4 images in all" in page  # 3 trials + 1 attention check
    note = page.split('id="attention-note"')[1].split("</p>")[0]
    assert "Colorized by a computer" in note and "stars" not in note
    assert "part 2" not in page.lower() and "Part 2" not in page

    for who in ("p1", "p2", "p3", "p4"):
        states = _take_part(c, slug, who)
        trials = [s["trial"] for s in states if s.get("trial")]
        assert {s["phase"] for s in states if s.get("trial")} == {"part1"}
        assert [t["index"] for t in trials] == [1, 2, 3, 4] and {t["total"] for t in trials} == {4}
        assert states[-1]["phase"] == "done" and states[-1]["completion_code"] == "C0DE-42"
        assert states[-2]["progress"] == {"answered": 3, "total": 4}
    with session_scope() as s:
        study = s.scalars(select(Study).where(Study.slug == slug)).one()
        rows = s.scalars(select(Trial).where(Trial.study_id == study.id)).all()
        assert {t.part for t in rows} == {1} and len(rows) == 16
        assert Counter(t.participant_id for t in rows if t.is_attention) == Counter(
            s.scalars(select(Participant.id)).all()
        )  # one check each, in part 1
        shown = Counter((t.photo_id, t.condition) for t in rows if not t.is_attention)
        assert len(shown) == 8 and max(shown.values()) - min(shown.values()) <= 1  # 12 slots over 8 stimuli

    login(c)
    summary = c.get(f"/admin/studies/{slug}/export/summary.json").json()
    assert summary["parts"] == [1] and summary["answers"] == {"part1": 12, "part2": None, "attention": 4}
    assert all(cond["part2"] is None and cond["part1"]["n"] == 6 for cond in summary["conditions"])
    [pair] = summary["comparisons"]
    assert pair["rating"] is None and pair["share_real"]["difference"] == 0.0

    results = c.get(f"/admin/studies/{slug}").text
    assert results.count('<svg class="chart"') == 1 and "Judged a real photo" in results
    assert "Mean rating" not in results and "Mean ★" not in results and "Part 2 n" not in results
    assert "Part 1 n (people)" in results
    assert "3 trials, real or colorized only" in results
    assert "(real or colorized only)" in c.get("/admin").text

    rows = _csv(c.get(f"/admin/studies/{slug}/export/summary.csv").text)
    assert [r["condition"] for r in rows] == ["real", "cnn"]
    assert all(r[col] == "" for r in rows for col in PART2_COLUMNS)  # empty: no part 2, not "0 ratings"
    assert all(r["part1_n"] == "6" and r["share_real"] == "0.0" for r in rows)
    [pair_row] = _csv(c.get(f"/admin/studies/{slug}/export/comparisons.csv").text)
    assert all(pair_row[col] == "" for col in pair_row if col.startswith("rating"))
    assert pair_row["share_real_difference"] == "0.0"
    stimuli = _csv(c.get(f"/admin/studies/{slug}/export/stimuli.csv").text)
    assert {r["shown_part2"] for r in stimuli} == {""} and sum(int(r["shown_part1"]) for r in stimuli) == 16
    codebook = {
        r["column"]: r["meaning"] for r in _csv(c.get(f"/admin/studies/{slug}/export/codebook.csv").text)
    }
    assert "Empty in a study without part 2" in codebook["mean_rating"]
    assert "Empty in a study without part 2" in codebook["rating_difference"]
    assert "Empty in a study without part 1" in codebook["share_real"]


def test_a_rating_only_study_end_to_end(app_client, make_study) -> None:
    c = app_client
    slug = make_study(trials=(0, 3), photos=4, methods=("cnn",), attention=True)
    page = c.get(f"/study/{slug}").text
    # The scale is explained with the instructions (there is no part-2 intro after them) and nothing asks
    # "real or colorized?".
    instructions = page.split('id="phase-instructions"')[1].split("</section>")[0]
    assert 'class="rating-legend"' in instructions and ">Begin</button>" in instructions
    assert "<kbd>R</kbd>" not in instructions and "in part 2" not in instructions
    note = page.split('id="attention-note"')[1].split("</p>")[0]
    assert "number of stars" in note and "Colorized by a computer" not in note
    assert 'id="phase-part2-intro"' not in page and 'id="trial-part"' not in page

    for who in ("r1", "r2"):
        states = _take_part(c, slug, who)
        trials = [s["trial"] for s in states if s.get("trial")]
        assert {s["phase"] for s in states if s.get("trial")} == {"part2"}
        assert [t["index"] for t in trials] == [1, 2, 3, 4] and {t["total"] for t in trials} == {4}
        assert sum(1 for t in trials if t["instruction"]) == 1  # the attention check, in the only part
        assert states[-1]["phase"] == "done"
    with session_scope() as s:
        study = s.scalars(select(Study).where(Study.slug == slug)).one()
        assert {t.part for t in s.scalars(select(Trial).where(Trial.study_id == study.id))} == {2}

    login(c)
    summary = c.get(f"/admin/studies/{slug}/export/summary.json").json()
    assert (
        summary["parts"] == [2] and summary["answers"]["part1"] is None and summary["answers"]["part2"] == 6
    )
    assert all(cond["part1"] is None and cond["part2"]["mean"] == 2.0 for cond in summary["conditions"])
    assert summary["comparisons"][0]["share_real"] is None
    assert all(cell["n1"] is None for p in summary["photos"] for cell in p["conditions"].values())
    assert "share judged real" not in summary["intervals"] and "mean rating" in summary["intervals"]

    results = c.get(f"/admin/studies/{slug}").text
    assert results.count('<svg class="chart"') == 1 and "Mean rating, 1-4 stars" in results
    assert "Judged a real photo" not in results and "Judged real" not in results
    assert "Part 1 n" not in results and "Part 2 n (people)" in results
    assert "3 trials, star ratings only" in results

    rows = _csv(c.get(f"/admin/studies/{slug}/export/summary.csv").text)
    assert all(r[col] == "" for r in rows for col in PART1_COLUMNS)
    assert all(r["part2_n"] == "3" and r["stars_2"] == "3" and r["stars_1"] == "0" for r in rows)
    [pair_row] = _csv(c.get(f"/admin/studies/{slug}/export/comparisons.csv").text)
    assert all(pair_row[col] == "" for col in pair_row if col.startswith("share_real"))
    assert pair_row["rating_difference"] == "0.0"
    stimuli = _csv(c.get(f"/admin/studies/{slug}/export/stimuli.csv").text)
    assert {r["shown_part1"] for r in stimuli} == {""}
    trials = _csv(c.get(f"/admin/studies/{slug}/export/trials.csv").text)
    assert {r["part"] for r in trials} == {"2"} and {r["response"] for r in trials} == {""}
