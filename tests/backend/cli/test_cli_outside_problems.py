"""The command line when something outside it is wrong — the output folder, a file given as text or weights,
the device, the database — or when writing could lose a photo: a clean message, never a traceback, and
nothing half-written or replaced."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from backend.cli.colorize import write_whole
from tests.backend.cli.conftest import run_cli
from tests.conftest import IMAGENET, child_env


@pytest.fixture
def gray_photo(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    return Path(shutil.copy(sorted(IMAGENET.glob("00*.jpg"))[0], folder / "photo.png"))


def test_colorizing_into_the_input_folder_never_replaces_a_photo(gray_photo: Path) -> None:
    before = gray_photo.read_bytes()
    code, output = run_cli(
        "colorize", str(gray_photo), "-o", str(gray_photo.parent), "-m", "cnn", "--no-progress"
    )
    assert code == 0, output
    assert gray_photo.read_bytes() == before  # the input is untouched
    assert sorted(p.name for p in gray_photo.parent.iterdir()) == ["photo-2.png", "photo.png"]
    for _ in range(2):  # again: its result is no input (it once doubled the folder each run), it is replaced
        code, output = run_cli(
            "colorize", str(gray_photo.parent), "-o", str(gray_photo.parent), "-m", "cnn", "--no-progress"
        )
        assert code == 0, output
        assert sorted(p.name for p in gray_photo.parent.iterdir()) == ["photo-2.png", "photo.png"]
    assert gray_photo.read_bytes() == before


def test_output_paths_that_cannot_be_written_are_clean_errors(gray_photo: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, output = run_cli(
        "colorize", str(gray_photo), "-o", str(a_file / "sub"), "-m", "cnn", "--no-progress"
    )
    assert code == 1 and "Not a directory" in output and str(a_file) in output
    blocked = tmp_path / "out"
    (blocked / "photo.png").mkdir(parents=True)  # where the result would go: left alone, another name
    code, output = run_cli("colorize", str(gray_photo), "-o", str(blocked), "-m", "cnn", "--no-progress")
    assert code == 0 and sorted(p.name for p in blocked.iterdir()) == ["photo-2.png", "photo.png"]


def test_write_whole_leaves_nothing_half_written(tmp_path: Path) -> None:
    target = tmp_path / "result.png"
    write_whole(target, b"complete")
    assert target.read_bytes() == b"complete" and [p.name for p in tmp_path.iterdir()] == ["result.png"]
    (tmp_path / "blocked.png").mkdir()
    with pytest.raises(OSError):
        write_whole(tmp_path / "blocked.png", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked.png", "result.png"]


def test_no_empty_output_folder_when_nothing_could_be_read(tmp_path: Path) -> None:
    bad = tmp_path / "zero.jpg"
    bad.write_bytes(b"")
    code, output = run_cli("colorize", str(bad), "-o", str(tmp_path / "out"), "-m", "cnn", "--no-progress")
    assert code == 1 and "zero.jpg" in output
    assert not (tmp_path / "out").exists()


def test_text_files_that_are_not_text_and_unknown_devices(gray_photo: Path, tmp_path: Path) -> None:
    code, output = run_cli(
        "colorize", str(gray_photo), "-o", str(tmp_path / "o"), "--hints", f"@{gray_photo}"
    )
    assert code == 1 and "not a UTF-8 text file" in output
    code, output = run_cli("colorize", str(gray_photo), "-o", str(tmp_path / "o"), "--device", "bogus")
    assert code == 2 and "unknown device 'bogus'" in output
    code, output = run_cli("colorize", str(gray_photo), "-o", str(tmp_path / "o"), "--device", "cuda:7")
    assert code == 2 and "not available" in output
    code, output = run_cli(
        "colorize", str(gray_photo), "-o", str(tmp_path / "o"), "-m", ""
    )  # not the default
    assert code == 2 and "unknown method ''" in output
    assert not (tmp_path / "o").exists()


def training_photos(tmp_path: Path, count: int) -> Path:
    """A folder of ``count`` ImageNet sample photos to train on."""
    photos = tmp_path / "train"
    photos.mkdir()
    for src in sorted(IMAGENET.glob("00*.jpg"))[:count]:
        shutil.copy(src, photos / src.name)
    return photos


def one_cnn_epoch(photos: Path, *more: str) -> tuple[str, ...]:
    """`colorlab train` arguments: one epoch of cnn on ``photos``, and ``more``."""
    return ("train", "--arch", "cnn", "--data", str(photos), "--epochs", "1", *more)


def test_train_refuses_files_that_are_not_weights_or_checkpoints(tmp_path: Path) -> None:
    photos = training_photos(tmp_path, 8)
    junk = tmp_path / "junk.pt"
    junk.write_text("not torch at all")
    common = one_cnn_epoch(photos, "--out", str(tmp_path / "m.pt"))
    code, output = run_cli(*common, "--init-from", str(junk))
    assert code == 1 and "not a ColorLab weights file" in output
    code, output = run_cli(*common, "--checkpoint", str(junk), "--resume")
    assert code == 1 and "not a ColorLab training checkpoint" in output


def test_evaluate_skips_unreadable_photos_and_needs_what_it_asks_for(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for src in sorted(IMAGENET.glob("00*.jpg"))[:2]:
        shutil.copy(src, data / src.name)
    (data / "00zz_broken.jpg").write_bytes(b"text, not a photo")
    out = tmp_path / "eval"
    code, output = run_cli(
        "evaluate", "--no-progress", "--methods", "cnn", "--data", str(data), "--out", str(out)
    )
    assert code == 1 and "1 left out (see above); the results written are in" in output  # as colorize
    assert "skipped 00zz_broken.jpg: not a readable image" in output
    assert "1 files skipped as not readable images: 00zz_broken.jpg" in (out / "summary.md").read_text()
    code, output = run_cli(
        "evaluate", "--methods", "exemplar", "--data", str(data), "--out", str(tmp_path / "e2")
    )
    assert code == 1 and "--references" in output


def test_a_database_that_is_not_set_up_says_how_to_set_it_up(tmp_path: Path) -> None:
    def colorlab(*args: str, **env: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "backend.cli", *args],
            env=child_env(DATA_DIR=tmp_path / "data", **env),
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = colorlab("study", "list")
    assert done.returncode == 1 and "run `colorlab migrate` first" in done.stderr
    assert "Traceback" not in done.stderr
    done = colorlab("study", "list", DATABASE_URL="nosuchdialect://x")
    assert done.returncode == 1 and "DATABASE_URL" in done.stderr and "Traceback" not in done.stderr


def test_a_large_local_scan_reads_without_a_bomb_warning(tmp_path: Path) -> None:
    import warnings

    from PIL import Image

    from backend.cli.colorize import read_photo

    scan = tmp_path / "scan.png"
    Image.new("L", (10_000, 9_000)).save(scan)  # 90 MP: over PIL's warning threshold, under its hard limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_photo(scan).rgb.shape == (9_000, 10_000, 3)


def test_a_16_bit_scan_and_a_transparent_photo_read_as_uploads_do(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from backend.cli.colorize import read_photo
    from backend.images import decode

    gray = np.asarray(Image.open(sorted(IMAGENET.glob("00*.jpg"))[0]).convert("L"))
    scan = tmp_path / "scan16.png"
    Image.fromarray(gray.astype(np.uint16) * 257).save(scan)  # a 16-bit archive scan
    assert Image.open(scan).mode == "I;16"
    assert np.array_equal(read_photo(scan).rgb[..., 0], gray)  # not clipped to white
    clear = tmp_path / "clear.png"
    Image.new("LA", (8, 8), (0, 0)).save(clear)  # transparent black: composited over white
    for path in (scan, clear):
        local, uploaded = read_photo(path), decode(path.read_bytes(), max_pixels=10**8)
        assert np.array_equal(local.rgb, uploaded.rgb)
        assert np.array_equal(local.lightness(), uploaded.lightness())  # a 16-bit scan's from its 16 bits


def test_a_reader_that_leaves_early_stops_the_command_quietly(tmp_path: Path) -> None:
    """`colorlab weights list | head -1`: the pipe is closed before the command writes; no "Broken pipe"."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "weights", "list"],
        env=child_env(DATA_DIR=tmp_path / "data"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first line is written
    _, errors = proc.communicate(timeout=120)
    assert proc.returncode == 141 and errors == "", errors  # 128 + SIGPIPE, as `yes | head -1` gives


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_a_rerun_replaces_its_own_results_but_never_a_file_of_the_users(
    gray_photo: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    own = out / f"photo.{fmt}"  # the user's own photo, named as the result would be
    shutil.copy(sorted(IMAGENET.glob("01*.jpg"))[0], own)
    before = own.read_bytes()
    args = ("colorize", str(gray_photo), "-o", str(out), "-m", "cnn", "--format", fmt, "--no-progress")
    code, output = run_cli(*args)
    assert code == 0, output
    assert own.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [
        f"photo-2.{fmt}",
        f"photo.{fmt}",
    ]
    result = out / f"photo-2.{fmt}"
    with Image.open(result) as img:  # marked as ColorLab's, with the method
        assert (img.info.get("Software") or img.info["comment"].decode()) == "ColorLab (cnn)"
    code, output = run_cli(*args)  # a re-run replaces its earlier result in place
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == [f"photo-2.{fmt}", f"photo.{fmt}"]
    result.write_bytes(b"not ours any more")  # no mark: kept, and the next re-run writes photo-3
    code, output = run_cli(*args)
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == [f"photo-2.{fmt}", f"photo-3.{fmt}", f"photo.{fmt}"]
    assert own.read_bytes() == before and result.read_bytes() == b"not ours any more"


def test_an_option_without_a_name_is_refused(gray_photo: Path, tmp_path: Path) -> None:
    code, output = run_cli("colorize", str(gray_photo), "-o", str(tmp_path / "o"), "--option", "=3")
    assert code == 2 and "--option needs NAME=VALUE, got '=3'" in output


def test_train_refuses_outputs_that_would_replace_what_is_not_a_training_s(tmp_path: Path) -> None:
    """Checked before training starts: a photo of --data, a user's file, the weights as their own checkpoint
    (each was replaced once, after the whole run)."""
    photos = training_photos(tmp_path, 4)
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    notes = tmp_path / "notes.md"
    notes.write_text("my notes")
    a_photo = next(photos.iterdir())
    keep = tmp_path / "keep.txt"
    keep.write_text("keep me")
    common = one_cnn_epoch(photos, "--size", "32", "--limit", "2")
    # 2: the request itself cannot be (README); 1: a file or folder it cannot use, one line
    for extra, says, status in (
        (("--out", str(a_photo)), "inside the training data", 2),
        (("--out", str(photos / "new.pt")), "inside the training data", 2),
        (("--out", str(tmp_path / "notes.pt")), "model card", 1),
        (("--out", str(tmp_path / "same.pt"), "--checkpoint", str(tmp_path / "same.pt")), "the same file", 2),
        (("--out", str(keep)), "not a ColorLab weights file", 1),
        # places no file can be written, found before training (root may write anywhere else)
        (("--out", str(keep / "x.pt")), "cannot be written", 1),
        (("--out", "/proc/colorlab-x.pt"), "cannot be written", 1),
        (("--out", str(tmp_path / "w.pt"), "--checkpoint", str(keep / "c.ckpt")), "cannot be written", 1),
        (("--out", str(tmp_path / "w.pt"), "--checkpoint", str(tmp_path)), "is a", 1),  # folder / directory
    ):
        code, output = run_cli(*common, *extra)
        assert code == status and says in output, (extra, output)
        assert status == 2 or "Usage:" not in output, output  # a file's problem: one line
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before
    assert notes.read_text() == "my notes" and keep.read_text() == "keep me"
    assert not (tmp_path / "same.pt").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("train", "--arch", "cnn", "--lr", "nan"), "not a finite number"),
        (("train", "--arch", "cnn", "--lr", "1e300"), "is not in the range 0<x<=1"),
        (("train", "--arch", "cnn", "--max-zoom", "nan"), "not a finite number"),
        (("train", "--arch", "unet-bins", "--freeze-epochs", "inf"), "not a finite number"),
        (("train", "--arch", "cnn", "--max-minutes", "nan"), "not a finite number"),
        (("train", "--arch", "cnn", "--threads", "100000"), "100000 is not in the range"),
        (("train", "--arch", "cnn", "--size", "8192"), "8192 is not in the range"),
        (("evaluate", "--methods", "cnn", "--eps", "nan"), "not a finite number"),
        (("evaluate", "--methods", "cnn", "--eps", "inf"), "inf is not in the range"),
    ],
)
def test_numbers_no_run_could_use_are_refused_up_front(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    """NaN passes every range check; inf and huge values overflowed (or crashed torch) only mid-run."""
    code, output = run_cli(*args, "--data", str(IMAGENET), "--out", str(tmp_path / "o"))
    assert code == 2 and says in output, output
    assert not (tmp_path / "o").exists()


def test_a_16_bit_png_whose_header_claims_a_huge_size_is_refused_like_any_other(tmp_path: Path) -> None:
    import struct
    import zlib

    from backend import png16

    head = png16.chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 16, 2, 0, 0, 0))
    huge = png16.SIGNATURE + head + png16.chunk(b"IDAT", zlib.compress(b"")) + png16.chunk(b"IEND", b"")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a_huge.png").write_bytes(huge)
    shutil.copy(sorted(IMAGENET.glob("00*.jpg"))[0], tmp_path / "in" / "b_fine.jpg")
    code, output = run_cli(
        "colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", "cnn", "--no-progress"
    )
    assert code == 1 and "a_huge.png" in output and "100000×100000" in output, output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b_fine.png"]  # the rest done


def test_a_pipe_is_refused_rather_than_waited_on(gray_photo: Path, tmp_path: Path) -> None:
    """A FIFO with no writer would block the open forever: as an input or a reference it is refused."""
    pipe = tmp_path / "photo.png"
    os.mkfifo(pipe)
    code, output = run_cli("colorize", str(pipe), "-o", str(tmp_path / "o"), "--no-progress")
    assert code == 1 and "not a regular file or folder" in output, output
    code, output = run_cli(
        "colorize", str(gray_photo), "-o", str(tmp_path / "o"), "--reference", str(pipe), "--no-progress"
    )
    assert code == 1 and "not a regular file" in output, output
    assert not (tmp_path / "o").exists()


def test_a_gray_reference_is_refused(gray_photo: Path, tmp_path: Path) -> None:
    gray = tmp_path / "gray.png"
    Image.open(gray_photo).convert("L").save(gray)
    code, output = run_cli(
        "colorize", str(gray_photo), "-o", str(tmp_path / "o"), "--reference", str(gray), "--no-progress"
    )
    assert code == 1 and "has no colour" in output
    assert not (tmp_path / "o").exists()


def test_weights_cut_short_make_their_methods_unavailable(gray_photo: Path, tmp_path: Path) -> None:
    from backend.config import get_settings
    from worker.colorizers import methods

    source = get_settings().weights_dir
    [entry] = [w for w in methods.get("fusion").weights if w.name == "efficientnet-lite0"]  # type: ignore[union-attr]
    damaged = tmp_path / "weights"
    shutil.copytree(source, damaged, copy_function=os.symlink)  # links: the files stay where they are
    path = entry.path(damaged)
    whole = path.read_bytes()
    path.unlink()
    path.write_bytes(whole[: len(whole) // 2])
    code, output = run_cli("weights", "list", "--quick", "--weights-dir", str(damaged))
    assert re.search(r"\n  fusion +unavailable: weights", output) and "damaged" in output, output
    code, output = run_cli(
        "colorize", str(gray_photo), "-o", str(tmp_path / "o"), "-m", "fusion", "--weights-dir", str(damaged)
    )
    assert code == 1 and "damaged" in output and "--force" in output, output


def test_weights_with_flipped_bits_are_refused_before_they_load(gray_photo: Path, tmp_path: Path) -> None:
    """A file of the pinned size whose bytes differ (a bit flipped on disk) is caught by its sha256 when the
    method loads, with the fix; the listing's quick check (sizes only) still calls it available."""
    from backend.config import get_settings

    damaged = tmp_path / "weights"
    shutil.copytree(get_settings().weights_dir, damaged, copy_function=os.symlink)
    path = damaged / "efficientnet-lite0-57934424.pth"
    flipped = bytearray(path.read_bytes())
    flipped[len(flipped) // 2] ^= 0x10
    path.unlink()
    path.write_bytes(flipped)
    code, output = run_cli(
        "colorize", str(gray_photo), "-o", str(tmp_path / "o"), "-m", "fusion", "--weights-dir", str(damaged)
    )
    assert code == 1 and "method 'fusion' is unavailable" in output, output
    assert "efficientnet-lite0-57934424.pth are damaged (sha256" in output, output
    assert f"`colorlab weights fetch efficientnet-lite0 --force --weights-dir {damaged}`" in output, output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    code, output = run_cli("weights", "list", "--quick", "--weights-dir", str(damaged))
    assert re.search(r"\n  fusion +available", output), output
    code, output = run_cli("weights", "list", "--weights-dir", str(damaged))
    assert "efficientnet-lite0   BAD (sha256" in output, output
    assert re.search(
        r"\n  fusion +unavailable: weights efficientnet-lite0-57934424.pth are damaged \(sha256", output
    )


def test_evaluate_writes_nowhere_it_reads(tmp_path: Path) -> None:
    photos = training_photos(tmp_path, 2)
    for out in (photos, photos / "eval"):
        code, output = run_cli("evaluate", "--methods", "cnn", "--data", str(photos), "--out", str(out))
        assert code == 2 and "which it reads" in output, output
    assert sorted(p.suffix for p in photos.iterdir()) == [".jpg", ".jpg"]


@pytest.mark.parametrize(
    "garbage", [b"this is not a torch file" * 100, b"", b"PK\x03\x04" * 50], ids=["text", "empty", "zip-head"]
)
def test_weights_torch_cannot_read_are_one_line(gray_photo: Path, tmp_path: Path, garbage: bytes) -> None:
    """An unpinned file (the official ECCV16 release) that torch's reader chokes on, in whichever way it
    chokes (IndexError, EOFError, RuntimeError…), makes its method unavailable with the fix."""
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "colorization_release_v2-9b330a0b.pth").write_bytes(garbage)
    code, output = run_cli(
        "colorize", str(gray_photo), "-o", str(tmp_path / "o"), "-m", "eccv16", "--weights-dir", str(weights)
    )
    assert code == 1 and "method 'eccv16' is unavailable" in output, output
    assert "cannot be loaded (not a PyTorch weights file, or cut short)" in output, output
    assert f"`colorlab weights fetch eccv16 --force --weights-dir {weights}`" in output, output
    assert "Traceback" not in output, output
    assert "weights_only" not in output  # torch's advice to load untrusted pickles is not ours to pass on


@pytest.mark.parametrize("command", ["colorize", "train", "evaluate"])
def test_a_device_setting_this_machine_lacks_is_one_line(tmp_path: Path, command: str) -> None:
    """A .env written for a GPU worker (DEVICE=cuda:9) read on a machine without one: the commands that
    default to the DEVICE setting say so in a line, no traceback."""
    photo = str(sorted(IMAGENET.glob("*.jpg"))[0])
    args = {
        "colorize": ["colorize", photo, "-o", str(tmp_path / "o")],
        "train": ["train", "--arch", "cnn", "--data", str(IMAGENET), "--out", str(tmp_path / "w.pt")],
        "evaluate": ["evaluate", "--data", str(IMAGENET), "--out", str(tmp_path / "e")],
    }[command]
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        env=child_env(DATA_DIR=tmp_path / "data", DEVICE="cuda:9"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: DEVICE setting: "), done.stderr
