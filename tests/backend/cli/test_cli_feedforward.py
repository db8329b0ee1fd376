"""`colorlab colorize`, `colorlab weights` and `colorlab train` on real photos (../shared/data)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.backend.cli.conftest import run_cli
from tests.conftest import IMAGENET, child_env
from worker.colorizers import lab


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for i, src in enumerate(sorted(IMAGENET.glob("00*.jpg"))[:3]):
        shutil.copy(src, (folder / "sub" if i == 2 else folder) / src.name)
    return folder


def test_colorize_folder_glob_and_file_with_batches(photos: Path, tmp_path: Path):
    out = tmp_path / "out"
    first = sorted(photos.glob("*.jpg"))[0]
    code, output = run_cli(
        "colorize",
        str(photos),
        str(photos / "*.jpg"),
        str(first),
        "-o",
        str(out),
        "--method",
        "cnn",
        "--batch-size",
        "2",
        "--no-progress",
    )
    assert code == 0, output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(written) == 3  # duplicates from the folder, the glob and the file are colorized once
    assert sum(name.startswith("sub/") for name in written) == 1  # the folder's tree is kept
    for png in out.rglob("*.png"):
        src = next(photos.rglob(png.stem + ".jpg"))
        rgb_in = np.asarray(Image.open(src).convert("RGB"))
        rgb_out = np.asarray(Image.open(png))
        assert rgb_out.shape == rgb_in.shape
        assert np.abs(lab.rgb_to_lab(rgb_out)[..., 0] - lab.rgb_to_lightness(rgb_in)).mean() < 0.3


def test_colorize_format_jpg(photos: Path, tmp_path: Path):
    out = tmp_path / "out"
    code, output = run_cli(
        "colorize", str(photos), "-o", str(out), "--format", "jpg", "--quality", "85", "--no-progress"
    )
    assert code == 0, output
    written = sorted(p for p in out.rglob("*") if p.is_file())
    assert [p.suffix for p in written] == [".jpg"] * 3
    for jpg in written:
        image = Image.open(jpg)
        assert image.format == "JPEG"
        assert image.size == Image.open(next(photos.rglob(jpg.stem + ".jpg"))).size
    code, output = run_cli("colorize", str(photos), "-o", str(out), "--format", "gif")
    assert code == 2 and "gif" in output


def test_colorize_reports_unreadable_files_cleanly(photos: Path, tmp_path: Path):
    bad = photos / "broken.jpg"
    bad.write_bytes(b"not an image")
    code, output = run_cli(
        "colorize", str(photos), "-o", str(tmp_path / "out"), "--method", "cnn", "--no-progress"
    )
    assert code == 1
    assert "broken.jpg" in output and "Traceback" not in output
    assert len(list((tmp_path / "out").rglob("*.png"))) == 3


def test_colorize_clean_errors(tmp_path: Path):
    code, output = run_cli("colorize", str(tmp_path / "nope.jpg"), "-o", str(tmp_path), "--no-progress")
    assert code == 1 and "no such file" in output
    code, output = run_cli("colorize", str(IMAGENET / "000_*.jpg"), "-o", str(tmp_path), "--method", "nope")
    assert code == 2 and "unknown method" in output  # a refusal; a missing file above is 1
    code, output = run_cli(
        "colorize",
        str(IMAGENET / "000_*.jpg"),
        "-o",
        str(tmp_path),
        "--method",
        "eccv16",
        "--weights-dir",
        str(tmp_path / "empty"),
    )
    assert code == 1 and "colorlab weights fetch eccv16" in output and "Traceback" not in output


def test_weights_list_and_fetch(tmp_path: Path):
    folder = tmp_path / "w"
    code, output = run_cli("weights", "fetch", "efficientnet-lite0", "--weights-dir", str(folder))
    assert code == 0, output
    code, output = run_cli("weights", "list", "--weights-dir", str(folder))
    assert code == 0
    line = next(x for x in output.splitlines() if x.startswith("efficientnet-lite0"))
    assert "verified" in line
    assert next(x for x in output.splitlines() if x.startswith("cnn ")).split()[1] == "verified"
    assert re.search(
        r"\n  eccv16 +unavailable: weights not fetched: run `colorlab weights fetch eccv16`", output
    )
    code, output = run_cli("weights", "fetch", "nope", "--weights-dir", str(folder))
    assert code == 2 and "unknown weight file" in output


def test_train_cli_tiny_run_and_resume(tmp_path: Path):
    out = tmp_path / "cnn.pt"
    args = [
        "train",
        "--arch",
        "cnn",
        "--data",
        str(IMAGENET),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--size",
        "32",
        "--limit",
        "4",
        "--out",
        str(out),
        "--checkpoint",
        str(tmp_path / "c.ckpt"),
        "--no-progress",
    ]
    code, output = run_cli(*args)
    assert code == 0, output
    assert out.is_file() and out.with_suffix(".md").is_file()
    code, output = run_cli(*args)  # the same again without --resume would throw the first run away
    assert code == 2 and "c.ckpt holds an earlier run: add --resume" in output, output
    code, output = run_cli(*[a if a != "1" else "2" for a in args], "--resume")
    assert code == 0 and "2 epochs" in output
    code, output = run_cli(
        "train", "--arch", "cnn", "--data", str(IMAGENET), "--size", "30", "--out", str(out)
    )
    assert code == 1 and "multiple of 8" in output


def test_colorize_uses_the_default_method_with_vividness_and_hints(photos: Path, tmp_path: Path):
    first = sorted(photos.glob("*.jpg"))[0]
    hints = tmp_path / "hints.json"
    hints.write_text('[{"x": 0.5, "y": 0.5, "color": "#c81e1e"}]', encoding="utf-8")
    out = tmp_path / "out"
    code, output = run_cli(
        "colorize", str(first), "-o", str(out), "--vividness", "0.8", "--hints", f"@{hints}", "--no-progress"
    )
    assert code == 0, output
    assert "with unet-bins" in output
    rgb = np.asarray(Image.open(out / f"{first.stem}.png"))
    h, w, _ = rgb.shape
    centre = lab.rgb_to_lab(rgb[h // 2 - 3 : h // 2 + 4, w // 2 - 3 : w // 2 + 4])
    assert centre[..., 1].mean() > 15  # the red hint shows where it was put


def test_colorize_refuses_bad_hints_and_vividness_cleanly(tmp_path: Path):
    photo = str(IMAGENET / "000_*.jpg")
    # README: 2 for a refusal (a bad value), 1 for a file it cannot use
    for extra, words, status in (
        (["--hints", "[{"], "JSON list", 2),
        (["--hints", '[{"x": 3, "y": 0, "color": "#ffffff"}]'], "from 0 to 1", 2),
        (["--hints", f"@{tmp_path / 'missing.json'}"], "No such file", 1),
        (["--vividness", "2"], "0<=x<=1", 2),
        (["--method", "cnn", "--vividness", "0.5"], "unknown option", 2),
        (["--method", "unet-bins-reference"], "needs --reference", 2),
    ):
        code, output = run_cli("colorize", photo, "-o", str(tmp_path / "o"), "--no-progress", *extra)
        assert code == status and words in output and "Traceback" not in output, (extra, output)
    assert not (tmp_path / "o").exists()


def test_train_unet_bins_tiny_run_and_resume(tmp_path: Path):
    out = tmp_path / "unet-bins.pt"
    args = ["train", "--arch", "unet-bins", "--data", str(IMAGENET), "--epochs", "1", "--batch-size", "4",
            "--size", "64", "--limit", "8", "--freeze-epochs", "1", "--out", str(out),
            "--checkpoint", str(tmp_path / "u.ckpt"), "--no-progress"]  # fmt: skip
    code, output = run_cli(*args)
    assert code == 0, output
    assert out.is_file() and "2 steps" in output
    card = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "261 sRGB-gamut ab bins" in card and "colourfulness" in card
    code, output = run_cli(*[a if a != "1" else "2" for a in args], "--resume", "--decay-steps", "2")
    assert code == 0 and "4 steps" in output, output
    assert "cosine decay to 0.05× over 2 steps" in out.with_suffix(".md").read_text(encoding="utf-8")
    code, output = run_cli(
        "train", "--arch", "unet-bins", "--data", str(IMAGENET), "--size", "48", "--out", str(out)
    )
    assert code != 0 and "multiple of 32" in output


def test_train_reference_fusion_refuses_a_folder_that_is_not_colour_photos(tmp_path: Path):
    out = tmp_path / "fusion.pt"
    code, output = run_cli("train", "--arch", "reference-fusion", "--data", str(IMAGENET), "--out", str(out))
    assert code != 0 and "the colour-photos folder" in output and "Traceback" not in output, output
    assert not out.exists()


def test_a_reference_without_a_method_runs_the_reference_guided_net(photos: Path, tmp_path: Path):
    reference = next(IMAGENET.glob("047_*.jpg"))  # a chameleon: green
    code, output = run_cli("colorize", str(photos), "-o", str(tmp_path / "ref"),
                           "--reference", str(reference), "--no-progress")  # fmt: skip
    assert code == 0, output
    assert "with unet-bins-reference" in output
    code, output = run_cli("colorize", str(photos), "-o", str(tmp_path / "plain"), "--no-progress")
    assert code == 0 and "with unet-bins " in output, output
    for guided in (tmp_path / "ref").glob("*.png"):
        a = lab.rgb_to_lab(np.asarray(Image.open(guided)))[..., 1:]
        b = lab.rgb_to_lab(np.asarray(Image.open(tmp_path / "plain" / guided.name)))[..., 1:]
        assert np.abs(a - b).mean() > 1.0  # the reference changed the colours


def test_a_reference_for_a_method_that_takes_none_is_refused(photos: Path, tmp_path: Path):
    reference = next(IMAGENET.glob("047_*.jpg"))
    code, output = run_cli("colorize", str(photos), "-o", str(tmp_path / "x"), "--method", "cnn",
                           "--reference", str(reference))  # fmt: skip
    assert code == 2 and "takes no reference" in output
    assert not (tmp_path / "x").exists()


def test_train_keeps_each_runs_checkpoint_beside_its_weights(tmp_path: Path):
    """Two runs whose weights share a name keep their own checkpoints (under var/train/<name>.ckpt one
    resumed the other's, with its learning rate); --resume without a checkpoint says it starts anew."""
    runs = [tmp_path / "a" / "cnn.pt", tmp_path / "b" / "cnn.pt"]
    for out in runs:
        code, output = run_cli("train", "--arch", "cnn", "--data", str(IMAGENET), "--epochs", "1",
                               "--batch-size", "4", "--size", "32", "--limit", "4", "--out", str(out),
                               "--no-progress", "--resume")  # fmt: skip
        assert code == 0 and "starting a new run" in output, output
        assert out.with_suffix(".ckpt").is_file()


def test_train_refuses_a_held_out_split_as_training_data(tmp_path: Path):
    from backend.cli.train import _refuse_held_out

    val = tmp_path / "photos" / "val" / "faces"
    val.mkdir(parents=True)
    (tmp_path / "photos" / "train").mkdir()
    shutil.copy(next(IMAGENET.glob("*.jpg")), val / "a.jpg")
    code, output = run_cli("train", "--arch", "cnn", "--data", str(val), "--out", str(tmp_path / "w.pt"))
    assert code == 2 and "is a held-out split (val/)" in output, output
    assert not (tmp_path / "w.pt").exists()
    checkout = tmp_path / "test" / "photos"  # a folder named test with no train/ beside it: no split
    checkout.mkdir(parents=True)
    _refuse_held_out((checkout,))


def test_train_resume_without_its_checkpoint_keeps_the_weights(tmp_path: Path):
    """--resume whose checkpoint is not there (a typo, or an older run's elsewhere) would start again and
    replace the weights: refused."""
    out = tmp_path / "cnn.pt"
    args = ["train", "--arch", "cnn", "--data", str(IMAGENET), "--epochs", "1", "--batch-size", "4", "--size",
            "32", "--limit", "4", "--out", str(out), "--no-progress"]  # fmt: skip
    code, output = run_cli(*args)
    assert code == 0, output
    before = out.read_bytes()
    code, output = run_cli(*args, "--resume", "--checkpoint", str(tmp_path / "typo.ckpt"))
    assert code == 2 and "there is no checkpoint at" in output and out.read_bytes() == before, output


def test_ctrl_c_stops_training_between_steps_and_says_how_to_go_on(tmp_path: Path):
    """Ctrl+C: the run saves where it is (unet-bins: the step) and prints the command that goes on from
    there; it exits 130. Before, it said "Aborted!" and its last 10 minutes were lost."""
    out = tmp_path / "ub.pt"
    command = [sys.executable, "-m", "backend.cli", "train", "--arch", "unet-bins", "--data", str(IMAGENET),
               "--epochs", "400", "--batch-size", "2", "--size", "32", "--limit", "8", "--out", str(out),
               "--threads", "1"]  # fmt: skip
    env = child_env(DATA_DIR=tmp_path / "data")
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = ""
    while not re.search(r"unet-bins: .*\b[1-9]\d*/1600", seen):  # a step is done: the loop runs
        char = proc.stderr.read(1)
        assert char, f"training ended before it was interrupted: {seen[-2000:]}"
        seen += char
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, seen[-500:] + rest
    assert "stopped by Ctrl+C" in rest and f"{out.with_suffix('.ckpt')} holds step" in rest, rest
    assert "--resume" in rest.splitlines()[-1]
    code, output = run_cli("train", "--arch", "unet-bins", "--data", str(IMAGENET), "--epochs", "1",
                           "--batch-size", "2", "--size", "32", "--limit", "8", "--out", str(out),
                           "--no-progress", "--resume")  # fmt: skip
    assert code == 0 and "steps" in output, output  # the saved step is past one epoch's: nothing to add


def test_unet_bins_resumes_at_the_step_its_encoder_thaws_and_refuses_another_archs_checkpoint(tmp_path: Path):
    """A run that ended where the frozen phase ends (every first round of --freeze-epochs 1) could not be
    resumed ("different number of parameter groups"); a cnn checkpoint was a KeyError traceback."""
    out = tmp_path / "ub.pt"
    args = ["train", "--arch", "unet-bins", "--data", str(IMAGENET), "--batch-size", "4", "--size", "32",
            "--limit", "8", "--freeze-epochs", "1", "--out", str(out), "--no-progress"]  # fmt: skip
    code, output = run_cli(*args, "--epochs", "1")
    assert code == 0 and "2 steps" in output, output
    code, output = run_cli(*args, "--epochs", "2", "--resume")
    assert code == 0 and "4 steps" in output, output
    cnn = tmp_path / "cnn.pt"
    code, output = run_cli("train", "--arch", "cnn", "--data", str(IMAGENET), "--epochs", "1",
                           "--batch-size", "4", "--size", "32", "--limit", "4", "--out", str(cnn),
                           "--no-progress")  # fmt: skip
    assert code == 0, output
    code, output = run_cli(*args, "--epochs", "2", "--resume", "--checkpoint", str(cnn.with_suffix(".ckpt")))
    assert code == 1 and "is a cnn checkpoint, not unet-bins" in output and "Traceback" not in output, output


def test_reference_fusion_refuses_fewer_pairs_than_a_batch(tmp_path: Path):
    code, output = run_cli("train", "--arch", "reference-fusion", "--data", str(IMAGENET), "--pairs", "16",
                           "--out", str(tmp_path / "rf.pt"))  # fmt: skip
    assert code == 2 and "16 pairs make no batch of 32" in output, output


def test_unet_bins_refuses_overlapping_data(tmp_path: Path):
    code, output = run_cli("train", "--arch", "unet-bins", "--data", str(IMAGENET.parent), "--data",
                           str(IMAGENET), "--out", str(tmp_path / "ub.pt"), "--no-progress")  # fmt: skip
    assert code == 1 and "is inside --data" in output, output
