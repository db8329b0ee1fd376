"""A `colorlab colorize` run as an archivist lives it: a folder it cannot read is named and fails the run, a
folder it cannot write is said before any work, another method's results are kept, an interrupted run says
how far it got and `--skip-existing` goes on from there, and an unreadable file is said in plain words."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from backend.cli import main
from tests.backend.cli.test_cli_colorize_folders import listing, make_boxes


def colorize(*args: str, method: str = "cnn") -> tuple[int, str]:
    result = CliRunner().invoke(main, ["colorize", *args, "-m", method, "--no-progress"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_a_folder_that_cannot_be_read_is_named_and_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_boxes(tmp_path, {"box/1962/photo.jpg": 0, "box/1963/photo.jpg": 1})
    real = os.scandir

    def scandir(path: object = ".") -> object:  # what a folder of another user's (mode 000) does
        if str(path).endswith("1963"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    code, output = colorize(str(tmp_path / "box"), "-o", str(tmp_path / "out"))
    assert code == 1, output  # a year's photos missing is not a success
    assert "cannot read the folder" in output and "1963: Permission denied" in output
    assert listing(tmp_path / "out") == ["1962/photo.png"]  # the rest is done


def test_an_outdir_that_cannot_be_written_is_said_before_any_photo(tmp_path: Path) -> None:
    make_boxes(tmp_path, {"box/photo.jpg": 0})
    (tmp_path / "afile").write_text("not a folder")
    code, output = colorize(str(tmp_path / "box"), "-o", str(tmp_path / "afile" / "out"))
    assert code == 1 and "cannot write into" in output and "photo(s) colorized" not in output, output


def test_another_methods_results_are_kept(tmp_path: Path) -> None:
    make_boxes(tmp_path, {"box/photo.jpg": 0})
    out = tmp_path / "out"
    assert colorize(str(tmp_path / "box"), "-o", str(out))[0] == 0
    assert colorize(str(tmp_path / "box"), "-o", str(out), method="gan")[0] == 0
    assert listing(out) == ["photo-2.png", "photo.png"]  # cnn's stays, gan's beside it
    assert colorize(str(tmp_path / "box"), "-o", str(out), method="gan")[0] == 0
    assert listing(out) == ["photo-2.png", "photo.png"]  # a re-run replaces its own method's


def test_an_interrupted_run_says_how_far_it_got_and_goes_on_with_skip_existing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.colorizers import pipeline

    make_boxes(tmp_path, {"box/a.jpg": 0, "box/b.jpg": 1, "box/c.jpg": 2})
    out = tmp_path / "out"
    real = pipeline.predict_many
    calls: list[int] = []

    def interrupted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "predict_many", interrupted)
    code, output = colorize(str(tmp_path / "box"), "-o", str(out), "--batch-size", "1")
    assert code == 130, output
    assert "interrupted: 2 of 3 photo(s) written" in output and "--skip-existing" in output
    assert listing(out) == ["a.png", "b.png"]
    written = {name: (out / name).stat().st_mtime_ns for name in listing(out)}
    monkeypatch.setattr(pipeline, "predict_many", real)
    code, output = colorize(str(tmp_path / "box"), "-o", str(out), "--skip-existing")
    assert code == 0, output
    assert "2 photo(s) already colorized with cnn" in output and "1 photo(s) colorized" in output
    assert listing(out) == ["a.png", "b.png", "c.png"]
    assert all((out / name).stat().st_mtime_ns == when for name, when in written.items())  # left alone


def test_a_file_that_is_not_a_photo_is_said_in_plain_words(tmp_path: Path) -> None:
    make_boxes(tmp_path, {"box/photo.jpg": 0})
    for n in range(8):
        (tmp_path / "box" / f"scan_{n}.jpg").write_bytes(b"not a photo at all")
    code, output = colorize(str(tmp_path / "box"), "-o", str(tmp_path / "out"))
    assert code == 1, output
    assert "scan_0.jpg: not an image file Pillow can read" in output
    assert "BufferedReader" not in output and "UnidentifiedImageError" not in output
    last = output.strip().splitlines()[-1]
    assert last.startswith("Error: 8 could not be used:") and last.endswith("and 3 more (above)"), last


def test_a_port_already_taken_is_refused_once_not_restarted_for_ever() -> None:
    """`serve` and `run` check the address before any process starts (they used to restart the web app
    with back-off for ever, or print "startup complete" and then fail)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for args in (["serve", "--port", str(port)], ["serve", "--port", str(port), "--workers", "2"]):
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 1, result.output
            assert f"cannot listen on 127.0.0.1:{port}" in result.output and "another --port" in result.output


def test_the_methods_and_their_options_are_listed_on_the_command_line() -> None:
    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0, result.output
    assert "unet-bins  Vivid colours (U-Net)  [default]" in result.output
    assert "--option follow_reference=float (default 0.5; 0 to 1)" in result.output
    assert "cnn  Soft colours (CNN)" in result.output and "available" in result.output
    one = CliRunner().invoke(main, ["methods", "exemplar"])
    assert one.exit_code == 0 and "--option iterations=int" in one.output and "preset Paper" in one.output
    assert "Optimisation iterations" in one.output  # with NAME: each option's words
    unknown = CliRunner().invoke(main, ["methods", "nope"])
    assert unknown.exit_code == 2 and "unknown method 'nope'" in unknown.output


def test_a_method_without_its_weights_says_where_they_were_looked_for(tmp_path: Path) -> None:
    make_boxes(tmp_path, {"box/photo.jpg": 0})
    empty = tmp_path / "weights"
    empty.mkdir()
    args = ["colorize", str(tmp_path / "box"), "-o", str(tmp_path / "out"), "-m", "fusion"]
    result = CliRunner().invoke(main, [*args, "--weights-dir", str(empty)])
    assert result.exit_code == 1, result.output
    assert f"--weights-dir {empty}`" in result.output  # the fetch hint fetches where it will be looked for
    assert f"(weights looked for in {empty.resolve()})" in result.output


def test_serve_and_worker_refuse_a_database_that_is_not_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every upload would fail on it ("try again shortly"): said once, at the start."""
    from tests.conftest import apply_settings, free_port

    apply_settings(monkeypatch, DATA_DIR=tmp_path / "var")
    result = CliRunner().invoke(main, ["serve", "--port", str(free_port())])  # refused before serving
    assert result.exit_code == 1, result.output
    assert "is not migrated: run `colorlab migrate` first" in result.output
    result = CliRunner().invoke(main, ["worker", "--lane", "fast"])  # so is a worker
    assert result.exit_code == 1 and "is not migrated" in result.output, result.output


def test_version_and_help_work_even_with_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    version = CliRunner().invoke(main, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("colorlab ")
    monkeypatch.setenv("PORT", "not-a-port")
    from backend.config import get_settings

    get_settings.cache_clear()
    monkeypatch.setattr(sys, "argv", ["colorlab", "colorize", "--help"])
    helped = CliRunner().invoke(main, ["colorize", "--help"])
    assert helped.exit_code == 0 and "Usage: main colorize" in helped.output, helped.output
    monkeypatch.setattr(sys, "argv", ["colorlab", "methods"])
    refused = CliRunner().invoke(main, ["methods"])
    assert refused.exit_code == 1 and "configuration error: PORT" in refused.output
    get_settings.cache_clear()


def test_a_path_it_cannot_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """README's rule: 2 for a refusal, 1 for a file or setting it cannot use, one line (click's own path
    checks gave 2 with a usage banner)."""
    make_boxes(tmp_path, {"box/photo.jpg": 0})
    (tmp_path / "afile").write_text("x")
    for args, says in (
        (["--reference", str(tmp_path / "missing.jpg")], "--reference: File"),
        (["-o", str(tmp_path / "afile")], "-o/--out: Directory"),
    ):
        out = [] if "-o" in args else ["-o", str(tmp_path / "out")]
        result = CliRunner().invoke(main, ["colorize", str(tmp_path / "box"), *out, *args])
        assert result.exit_code == 1 and says in result.output, result.output
        assert "Usage:" not in result.output, result.output


def test_migrate_goes_back_for_a_rollback_and_up_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import apply_settings

    apply_settings(monkeypatch, DATA_DIR=tmp_path / "var")
    assert CliRunner().invoke(main, ["migrate"]).exit_code == 0
    back = CliRunner().invoke(main, ["migrate", "--downgrade-to", "0011"])
    assert back.exit_code == 0 and "database schema at 0011" in back.output, back.output
    wrong = CliRunner().invoke(main, ["migrate", "--downgrade-to", "nope"])
    assert wrong.exit_code == 1 and "Can't locate revision" in wrong.output
    assert "up to date" in CliRunner().invoke(main, ["migrate"]).output
