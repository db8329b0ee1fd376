"""`colorlab study ...` and a study built through the real pipeline: the CLI queues the colorizations, a
real `colorlab worker` process runs them with the bundled cnn weights, and the study opens only once they
are done."""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from backend.cli import main
from backend.config import get_settings
from backend.db import session_scope
from backend.errors import UserError
from backend.study import builder
from backend.study.models import Stimulus
from tests.backend.study.conftest import photo_paths
from tests.conftest import child_env, method_available


def _photo_dir(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in photo_paths(n):
        shutil.copy(p, folder / p.name)
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_cli_refusals_and_export(sqlite_db, make_study, tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["study", "list"])
    assert listed.exit_code == 0 and "no studies yet" in listed.output  # (stderr: a script reads nothing)
    folder = _photo_dir(tmp_path, 3)
    res = runner.invoke(
        main, ["study", "create", "--title", "T", "--photos", str(folder), "--methods", "exemplar"]
    )
    assert res.exit_code != 0 and "reference image" in res.output
    res = runner.invoke(
        main, ["study", "create", "--title", "T", "--photos", str(folder), "--methods", "nope"]
    )
    assert res.exit_code == 2 and "unknown method 'nope'; a study can use: " in res.output
    assert "exemplar" not in res.output.split("can use:")[1]  # only methods a study can use are offered
    if not method_available("eccv16"):  # known but not installed: a file it cannot use (1), not a wrong name
        res = runner.invoke(
            main, ["study", "create", "--title", "T", "--photos", str(folder), "--methods", "eccv16"]
        )
        assert res.exit_code == 1 and "colorlab weights fetch eccv16" in res.output, res.output
    res = runner.invoke(
        main,
        [
            "study",
            "create",
            "--title",
            "T",
            "--photos",
            str(folder),
            "--methods",
            "cnn",
            "--trials",
            "5",
            "5",
        ],
    )
    assert res.exit_code != 0 and "at least 5 photos" in res.output
    slug = make_study(photos=5, methods=("cnn",))
    res = runner.invoke(main, ["study", "export", slug, "--kind", "stimuli"])
    assert res.exit_code == 0, res.output
    assert len(list(csv.DictReader(io.StringIO(res.output)))) == 10
    target = folder.parent / "stimuli.csv"
    target.write_text("an earlier export")  # replaced when the new one is whole, through a .part file
    assert (
        runner.invoke(main, ["study", "export", slug, "--kind", "stimuli", "-o", str(target)]).exit_code == 0
    )
    assert target.read_text(encoding="utf-8") == res.output
    assert not list(folder.parent.glob(".stimuli.csv.part"))
    res = runner.invoke(main, ["study", "export", slug, "--kind", "summary", "--exclude-failed-attention"])
    assert res.exit_code == 0, res.output
    assert {row["failed_attention_excluded"] for row in csv.DictReader(io.StringIO(res.output))} == {"true"}
    res = runner.invoke(main, ["study", "export", slug, "--kind", "comparisons", "--format", "json"])
    assert res.exit_code == 0, res.output
    [pair] = json.loads(res.output)  # real against cnn; nobody answered yet: no difference, no interval
    assert (pair["condition_a"], pair["condition_b"], pair["share_real_difference"]) == ("real", "cnn", None)
    assert slug in runner.invoke(main, ["study", "list"]).output
    assert runner.invoke(main, ["study", "close", slug]).exit_code == 0
    res = runner.invoke(main, ["study", "close", slug])
    assert res.exit_code != 0 and "not open" in res.output
    assert runner.invoke(main, ["study", "open", "missing"]).exit_code != 0


def test_photos_in_subfolders_are_taken_and_limit_samples_before_reading(
    sqlite_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of year subfolders is a study's photos (named by their path within); --limit takes the
    first N before any is read, so it samples an archive larger than a study takes."""
    from backend.study import photos as study_photos

    box = tmp_path / "box"
    for n, source in enumerate(photo_paths(6)):
        (box / f"19{60 + n % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(source, box / f"19{60 + n % 2}" / source.name)
    taken = study_photos.from_path(box, get_settings())
    assert len(taken) == 6 and all(p.name.startswith(("1960/", "1961/")) for p in taken)
    monkeypatch.setattr(study_photos, "MAX_PHOTOS", 4)
    with pytest.raises(UserError, match=r"at most 4 \(--limit takes fewer\)"):
        study_photos.from_path(box, get_settings())
    assert [p.name for p in study_photos.from_path(box, get_settings(), limit=3)] == [
        p.name for p in taken[:3]
    ]
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    res = CliRunner().invoke(
        main, ["study", "create", "--title", "T", "--photos", str(empty), "--methods", "cnn"]
    )
    assert res.exit_code == 1 and "no photos in" in res.output and "subfolders" in res.output, res.output


def test_cli_deletes_a_study_only_when_asked_and_not_open(sqlite_db, make_study) -> None:
    runner = CliRunner()
    slug = make_study(photos=5, methods=("cnn",))
    res = runner.invoke(main, ["study", "delete", slug])
    assert res.exit_code != 0 and "close the study" in res.output  # open: refused without asking
    assert runner.invoke(main, ["study", "close", slug]).exit_code == 0
    res = runner.invoke(main, ["study", "delete", slug], input="n\n")
    assert res.exit_code != 0 and "0 participant(s)' answers" in res.output and "Aborted" in res.output
    assert slug in runner.invoke(main, ["study", "list"]).output
    res = runner.invoke(main, ["study", "delete", slug], input="y\n")
    assert res.exit_code == 0 and "deleted: 5 job(s), 25 image(s)" in res.output, res.output
    assert slug not in runner.invoke(main, ["study", "list"]).output
    res = runner.invoke(main, ["study", "delete", slug, "--yes"])
    assert res.exit_code != 0 and "there is no study" in res.output


@pytest.mark.slow
def test_study_built_through_the_real_pipeline(sqlite_db, spawn, tmp_path: Path) -> None:
    if not method_available("cnn"):
        pytest.skip("the cnn weights (worker/colorizers/weights/cnn.pt) are not present: train them first")
    runner = CliRunner()
    folder = _photo_dir(tmp_path, 3)
    res = runner.invoke(
        main,
        [
            "study",
            "create",
            "--title",
            "Pipeline",
            "--photos",
            str(folder),
            "--methods",
            "cnn",
            "--trials",
            "2",
            "2",
            "--slug",
            "pipeline-study",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "3 colorization job(s) queued" in res.output
    res = runner.invoke(main, ["study", "open", "pipeline-study"])
    assert res.exit_code != 0 and "cannot open yet" in res.output
    worker = spawn("worker", env=child_env(DATA_DIR=get_settings().data_dir))
    deadline = time.monotonic() + 240
    while True:
        with session_scope() as s:
            readiness = builder.refresh(s, get_settings(), builder.get_study(s, "pipeline-study"))
        if readiness.complete or readiness.failed or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert readiness.complete, (readiness.message(), worker.log()[-3000:])
    worker.stop(sig=9)  # its work is done: no need to wait for a warm shutdown
    res = runner.invoke(main, ["study", "open", "pipeline-study"])
    assert res.exit_code == 0, res.output
    status = json.loads(runner.invoke(main, ["study", "status", "pipeline-study"]).output)
    assert status["study"]["status"] == "open" and status["readiness"] == "all 6 stimuli are ready"
    with session_scope() as s:
        stimuli = s.scalars(select(Stimulus).where(Stimulus.condition == "cnn")).all()
        assert len(stimuli) == 3
        for stim in stimuli:
            assert stim.job.status == "done" and stim.job.result_image_id == stim.source_image_id
            assert stim.display_image is not None and stim.display_image.format == "JPEG"
