"""`colorlab colorize` on what an archive's folders hold: TIFF scans in every orientation, boxes of photos
with the same names, and files whose names do not say they are photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, features

from backend.cli import main
from backend.cli.colorize import read_photo, source_record
from backend.images import decode, encode_png, result_marks
from tests.backend.cli.conftest import run_cli
from tests.conftest import IMAGENET
from worker.colorizers import lab

# What a viewer does to show each EXIF orientation upright, undone: the file stores the photo turned so
UNDO_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def small_gray(index: int = 0, size: tuple[int, int] = (90, 60)) -> Image.Image:
    """A real photo, gray and small (wider than tall: a turn shows in its size)."""
    with Image.open(sorted(IMAGENET.glob("0*.jpg"))[index]) as img:
        return img.convert("L").resize(size)


def colorize(*args: str) -> tuple[int, str]:
    return run_cli("colorize", *args, "-m", "cnn", "--no-progress")


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("bits", [8, 16])
def test_uncompressed_tiffs_in_every_orientation_come_out_upright(tmp_path: Path, bits: int) -> None:
    upright = small_gray()
    levels = np.asarray(upright)
    if bits == 16:  # a 16-bit scan: levels between the 8-bit ones too
        upright = Image.fromarray(levels.astype(np.uint16) * 257 + 100)
        assert upright.mode == "I;16"
    expected = (
        lab.gray16_to_lightness(np.asarray(upright))
        if bits == 16
        else lab.rgb_to_lightness(np.repeat(levels[..., None], 3, axis=-1))
    )
    folder = tmp_path / "scans"
    folder.mkdir()
    for orientation, undo in UNDO_ORIENTATION.items():
        stored = upright.transpose(undo) if undo is not None else upright
        stored.save(folder / f"o{orientation}.tif", tiffinfo={274: orientation})  # no compression
    code, output = colorize(str(folder), "-o", str(tmp_path / "out"))
    assert code == 0 and "8 photo(s) colorized" in output, output
    for orientation in UNDO_ORIENTATION:
        scan = folder / f"o{orientation}.tif"
        local, uploaded = read_photo(scan), decode(scan.read_bytes(), max_pixels=10**8)
        assert np.array_equal(local.rgb, uploaded.rgb), orientation  # read as the web app reads it
        assert np.array_equal(local.lightness(), uploaded.lightness()), orientation
        result = decode((tmp_path / "out" / f"o{orientation}.png").read_bytes(), max_pixels=10**8)
        assert (result.width, result.height) == upright.size, orientation  # turned upright
        error = np.abs(lab.rgb_to_lightness(result.rgb) - expected).mean()
        assert error < 0.5, (orientation, error)  # the scan's own lightness, not a scrambled one


def make_boxes(root: Path, layout: dict[str, int]) -> None:
    """Photos at the relative paths of ``layout``, each a different real photo (by index)."""
    for relative, index in layout.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        small_gray(index).save(root / relative)


def test_folders_keep_their_tree_and_each_result_names_its_source(tmp_path: Path) -> None:
    make_boxes(tmp_path, {"box/1962/photo.jpg": 0, "box/1963/photo.jpg": 1, "box/loose.jpg": 2})
    box = tmp_path / "box"
    code, output = colorize(str(box), "-o", str(tmp_path / "one"))  # one folder: its tree in OUTDIR
    assert code == 0, output
    assert listing(tmp_path / "one") == ["1962/photo.png", "1963/photo.png", "loose.png"]
    for result in (tmp_path / "one").rglob("*.png"):
        source = box / result.relative_to(tmp_path / "one").with_suffix(".jpg")
        assert result_marks(result).source == source_record(source)
        assert str(tmp_path).encode() not in result.read_bytes()  # a digest, not where the archive lies
    code, output = colorize(str(box / "1962"), str(box / "1963"), "-o", str(tmp_path / "two"))
    assert code == 0, output  # several folders: each in a folder of its name
    assert listing(tmp_path / "two") == ["1962/photo.png", "1963/photo.png"]
    code, output = colorize(str(box / "*" / "photo.jpg"), "-o", str(tmp_path / "glob"))
    assert code == 0, output  # a glob: the folders its wildcard matched
    assert listing(tmp_path / "glob") == ["1962/photo.png", "1963/photo.png"]
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "1962").write_text("a file of yours where a folder would go")
    code, output = colorize(str(box / "1962"), str(box / "1963"), "-o", str(blocked))
    assert code == 0, output
    assert listing(blocked) == ["1962", "1962-2/photo.png", "1963/photo.png"]
    assert (blocked / "1962").read_text() == "a file of yours where a folder would go"


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_a_rerun_never_replaces_the_result_of_another_photo_of_that_name(tmp_path: Path, fmt: str) -> None:
    make_boxes(tmp_path, {"box1/IMG_0001.jpg": 0, "box2/IMG_0001.jpg": 1})
    out = tmp_path / "out"
    first, second = out / f"IMG_0001.{fmt}", out / f"IMG_0001-2.{fmt}"
    code, output = colorize(str(tmp_path / "box1"), "-o", str(out), "--format", fmt)
    assert code == 0, output
    box1_result = first.read_bytes()
    code, output = colorize(
        str(tmp_path / "box2"), "-o", str(out), "--format", fmt
    )  # the camera's names again
    assert code == 0, output
    assert listing(out) == [f"IMG_0001-2.{fmt}", f"IMG_0001.{fmt}"]
    assert first.read_bytes() == box1_result  # box1's result is kept
    assert result_marks(first).source == source_record(tmp_path / "box1" / "IMG_0001.jpg")
    assert result_marks(second).source == source_record(tmp_path / "box2" / "IMG_0001.jpg")
    for box, result in (("box2", second), ("box1", first)):  # each re-run replaces its own result in place
        before = result.stat().st_ino  # a result is written beside and moved over: a new inode
        code, output = colorize(str(tmp_path / box), "-o", str(out), "--format", fmt)
        assert code == 0, output
        assert listing(out) == [f"IMG_0001-2.{fmt}", f"IMG_0001.{fmt}"]
        assert result.stat().st_ino != before
        assert result_marks(result).source == source_record(tmp_path / box / "IMG_0001.jpg")
    with Image.open(first) as img:  # ColorLab's mark is unchanged beside the record
        assert (img.info.get("Software") or img.info["comment"].decode()) == "ColorLab (cnn)"


def test_files_named_directly_from_two_folders_keep_apart_on_a_rerun(tmp_path: Path) -> None:
    make_boxes(tmp_path, {"1962/photo.jpg": 0, "1963/photo.jpg": 1})
    photos = [str(tmp_path / year / "photo.jpg") for year in ("1962", "1963")]
    out = tmp_path / "out"
    code, output = colorize(*photos, "-o", str(out))
    assert code == 0, output
    kept = (out / "photo.png").read_bytes()
    code, output = colorize(photos[1], "-o", str(out))  # 1963 alone: its result is photo-2.png, not photo.png
    assert code == 0, output
    assert listing(out) == ["photo-2.png", "photo.png"] and (out / "photo.png").read_bytes() == kept
    assert result_marks(out / "photo-2.png").source == source_record(Path(photos[1]))


def test_a_result_that_does_not_say_its_source_is_kept(tmp_path: Path) -> None:
    """An earlier version's result (marked ColorLab's, no source recorded) may be another photo's: kept."""
    make_boxes(tmp_path, {"in/photo.jpg": 0})
    out = tmp_path / "out"
    out.mkdir()
    unknown = encode_png(np.zeros((6, 8, 3), np.uint8), colorized_by="cnn")
    (out / "photo.png").write_bytes(unknown)
    code, output = colorize(str(tmp_path / "in"), "-o", str(out))
    assert code == 0, output
    assert listing(out) == ["photo-2.png", "photo.png"] and (out / "photo.png").read_bytes() == unknown


def test_a_folder_takes_every_name_of_a_photo_and_says_what_it_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    small_gray(0).save(folder / "scan.jfif", format="JPEG")  # Windows' name for a JPEG
    small_gray(1).save(folder / "print.jpe", format="JPEG")
    small_gray(2).save(folder / "negative", format="JPEG")  # no extension: not taken, but named
    (folder / "notes.txt").write_text("box 3, 1962")
    names = ["print.png", "scan.png"]
    if features.check("avif"):
        small_gray(3).save(folder / "photo.avif")
        names = ["photo.png", *names]
    result = CliRunner().invoke(
        main,
        ["colorize", str(folder), "-o", str(tmp_path / "out"), "-m", "cnn", "--no-progress"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output  # the photos were all colorized
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    assert result.stderr.strip() == (
        f"skipped 2 file(s) that are not photos by their name: {folder / 'negative'} (no extension), "
        f"{folder / 'notes.txt'} — name them directly to try them"
    )
    result = CliRunner().invoke(  # named directly, it is tried: only the notes are left
        main,
        ["colorize", str(folder), str(folder / "negative"), "-o", str(tmp_path / "direct"), "-m", "cnn",
         "--no-progress"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0 and "negative.png" in listing(tmp_path / "direct"), result.output
    assert result.stderr.startswith(
        f"skipped 1 file(s) that are not photos by their name: {folder / 'notes.txt'} —"
    )
    only_others = tmp_path / "others"
    only_others.mkdir()
    shutil.copy(folder / "negative", only_others / "negative")
    code, output = colorize(str(only_others), "-o", str(tmp_path / "none"))
    assert (
        code == 1 and "no input images; skipped 1 file(s)" in output and "negative (no extension)" in output
    )
    assert not (tmp_path / "none").exists()


def test_long_names_fit_in_a_mirrored_tree(tmp_path: Path) -> None:
    # 255 bytes, the most a file name holds; the same stem twice in one folder needs "-2" more
    names = {"x" * 251 + ".jpg": "x" * 251 + ".png", "x" * 251 + ".tif": "x" * 249 + "-2.png"}
    names["é" * 125 + ".tif"] = "é" * 125 + ".png"
    for box in ("box 1", "box 2"):
        (tmp_path / "in" / box).mkdir(parents=True)
        for name in names:
            Image.new("L", (24, 16), 90).save(tmp_path / "in" / box / name)
    code, output = colorize(
        str(tmp_path / "in" / "box 1"), str(tmp_path / "in" / "box 2"), "-o", str(tmp_path / "out")
    )
    assert code == 0, output
    assert listing(tmp_path / "out") == sorted(
        f"{box}/{name}" for box in ("box 1", "box 2") for name in names.values()
    )
