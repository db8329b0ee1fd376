"""`colorlab evaluate` end to end on a few real photos (../shared/data), with resume."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from backend.cli import main
from tests.backend.cli.conftest import run_cli
from tests.conftest import IMAGENET, SHARED_DATA, method_available
from worker.colorizers import methods

CIFAR = SHARED_DATA / "cifar10.zip"
TRAINED = ("cnn", "fusion", "gan")

pytestmark = pytest.mark.skipif(not IMAGENET.is_dir(), reason=f"{IMAGENET} not present")


def _evaluate(*args: str) -> tuple[int, str]:
    return run_cli("evaluate", "--no-progress", *args)


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "per_image.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _unavailable_reason(name: str) -> str | None:
    from backend.config import get_settings

    info = methods.get(name)
    if info is None:
        return "not in the catalogue"
    return info.unavailable_reason(get_settings().weights_dir)


def _check_outputs(out: Path, methods: list[str], photos: int, *, labelled: bool) -> list[dict[str, str]]:
    for name in (
        "per_image.csv",
        "per_image_curves.csv",
        "summary.csv",
        "summary.md",
        "curves.svg",
        "curves.png",
        "contact_sheet.png",
        "run.json",
    ):
        assert (out / name).is_file(), name
    # what ran it, for a paper's methods section: float32 unless --bf16, the versions and the commit
    last_run = json.loads((out / "run.json").read_text(encoding="utf-8"))["last_run"]
    assert last_run["bf16"] == "False" and last_run["torch"].startswith("2.") and last_run["commit"]
    assert {"split", "limit", "device", "numpy", "python"} <= set(last_run)
    rows = _rows(out)
    assert sorted({r["method"] for r in rows}) == sorted([*methods, "real"])
    assert len(rows) == photos * (len(methods) + 1)
    for r in rows:
        if r["method"] == "real":
            assert float(r["colourfulness"]) >= 0
            continue
        assert 0.0 <= float(r["eq9_acc"]) <= 1.0
        assert 0.0 <= float(r["auc"]) <= 1.0
        assert float(r["psnr"]) > 5.0
        assert -1.0 <= float(r["ssim"]) <= 1.0
        assert float(r["abs_dcf"]) == pytest.approx(abs(float(r["dcf"])), abs=1e-4)
        assert (r["top1"] in ("0", "1")) if labelled else r["top1"] == ""
    with open(out / "summary.csv", newline="") as fh:
        summary = {r["method"]: r for r in csv.DictReader(fh)}
    assert list(summary) == [*methods, "real"]
    gray = summary["gray"]
    assert float(gray["colourfulness"]) < 0.5  # gray output has (almost) no colour
    assert float(gray["dcf"]) < 0 and math.isfinite(float(gray["psnr"]))
    if labelled:
        assert 0.0 <= float(summary["real"]["top1"]) <= 1.0
    md = (out / "summary.md").read_text()
    assert "| gray |" in md and "AuC" in md
    svg = ET.parse(out / "curves.svg").getroot()
    assert svg.tag.endswith("svg")
    assert len(svg.findall("{http://www.w3.org/2000/svg}polyline")) == len(methods)
    assert Image.open(out / "curves.png").size == (900, 560)
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width > 128 * (len(methods) + 1)
    return rows


def test_evaluate_imagenet_gray_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ("--data", str(IMAGENET), "--out", str(out), "--split", "val", "--limit", "3")
    code, output = _evaluate(*args, "--batch-size", "2")
    assert code == 0, output
    rows = _check_outputs(out, ["gray"], 3, labelled=True)
    # every photo comes from the held-out validation classes of the training split
    from worker.colorizers.datasets import is_validation_class

    assert all(is_validation_class(int(r["label"])) for r in rows)

    # resume: nothing is recomputed; a removed row is computed again, once
    dropped = (rows[0]["image"], "gray")
    keep = [r for r in rows if (r["image"], r["method"]) != dropped]
    with open(out / "per_image.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep)
    code, output = _evaluate(*args)
    assert code == 0, output
    again = _rows(out)
    assert len(again) == len(rows)
    assert sum((r["image"], r["method"]) == dropped for r in again) == 1
    assert again[: len(keep)] == keep  # untouched rows kept as they were, the missing one appended


@pytest.mark.parametrize("method", TRAINED)
def test_evaluate_trained_method(tmp_path: Path, method: str) -> None:
    reason = _unavailable_reason(method)
    if reason:
        pytest.skip(f"{method} unavailable: {reason}")
    out = tmp_path / method
    code, output = _evaluate(
        "--methods",
        method,
        "--data",
        str(IMAGENET),
        "--out",
        str(out),
        "--split",
        "val",
        "--limit",
        "2",
        "--batch-size",
        "2",
    )
    assert code == 0, output
    _check_outputs(out, ["gray", method], 2, labelled=True)


@pytest.mark.skipif(not CIFAR.is_file(), reason=f"{CIFAR} not present")
def test_evaluate_cifar_zip_uses_test_entries(tmp_path: Path) -> None:
    out = tmp_path / "cifar"
    code, output = _evaluate("--data", str(CIFAR), "--out", str(out), "--limit", "4", "--samples", "2")
    assert code == 0, output
    rows = _check_outputs(out, ["gray"], 4, labelled=False)
    images = {r["image"] for r in rows}
    assert all(name.startswith("test/") for name in images)
    assert len({name.split("/")[1] for name in images}) == 4  # spread over classes, not the first 4 files


def test_evaluate_unavailable_methods_fail_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--methods",
            "no-such-method",
            "--data",
            str(IMAGENET),
            "--out",
            str(tmp_path / "x"),
            "--limit",
            "1",
        ],
    )
    # a name no method has is a wrong argument (2), refused before anything loads; an unavailable one
    # (its weights missing) cannot be used here (1)
    assert result.exit_code == 2
    assert "unknown method(s): no-such-method; known: unet-bins" in result.output
    assert not (tmp_path / "x").exists()
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--methods",
            "eccv16",
            "--data",
            str(IMAGENET),
            "--out",
            str(tmp_path / "y"),
            "--limit",
            "1",
        ],
    )
    if not method_available("eccv16"):
        assert result.exit_code == 1, result.output
        assert "cannot evaluate" in result.output and "colorlab weights fetch eccv16" in result.output
        assert not (tmp_path / "y" / "per_image.csv").exists()


def test_evaluate_refuses_to_mix_data_sets(tmp_path: Path) -> None:
    out = tmp_path / "mix"
    out.mkdir()
    (out / "run.json").write_text('{"data": "/elsewhere", "eps": 0.02}')
    code, output = _evaluate("--data", str(IMAGENET), "--out", str(out), "--limit", "1")
    assert code == 1 and "another evaluation" in output
    for damaged in ("garbage", "[]"):
        (out / "run.json").write_text(damaged)
        code, output = _evaluate("--data", str(IMAGENET), "--out", str(out), "--limit", "1")
        assert code == 1 and "not the run file of an evaluation" in output, output


@pytest.mark.slow  # loads VGG and optimises (10-40 s on a busy 2-core machine)
def test_evaluate_exemplar_with_references_and_options(tmp_path: Path) -> None:
    reason = _unavailable_reason("exemplar")
    if reason:
        pytest.skip(f"exemplar unavailable: {reason}")
    data, refs = tmp_path / "data", tmp_path / "refs"
    data.mkdir()
    refs.mkdir()
    target = next(IMAGENET.glob("017_*.jpg"))
    (data / target.name).write_bytes(target.read_bytes())
    (data / "no_reference.jpg").write_bytes(next(IMAGENET.glob("027_*.jpg")).read_bytes())
    Image.open(next(IMAGENET.glob("018_*.jpg"))).save(refs / (target.stem + ".png"))  # matched by stem
    out = tmp_path / "ex"
    code, output = _evaluate(
        "--methods",
        "exemplar",
        "--data",
        str(data),
        "--references",
        str(refs),
        "--out",
        str(out),
        "--option",
        "exemplar.iterations=2",
        "--option",
        "exemplar.size=64",
    )
    assert code == 1 and "1 left out" in output, output  # a photo without a reference: not all was done
    rows = _rows(out)
    ex = [r for r in rows if r["method"] == "exemplar"]
    assert [r["image"] for r in ex] == [target.name]  # the photo without a reference is skipped
    assert 0.0 <= float(ex[0]["auc"]) <= 1.0
    assert "1 photos without a readable reference image were skipped" in (out / "summary.md").read_text()


def test_evaluate_rejects_bad_options(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--methods",
            "exemplar",
            "--data",
            str(IMAGENET),
            "--out",
            str(tmp_path / "x"),
            "--option",
            "exemplar.iterations=-5",
        ],
    )
    assert result.exit_code != 0
    assert "exemplar" in result.output and ("iterations" in result.output or "unavailable" in result.output)
    result = CliRunner().invoke(
        main, ["evaluate", "--data", str(IMAGENET), "--out", str(tmp_path / "y"), "--option", "nodot=1"]
    )
    assert result.exit_code == 2 and "METHOD.NAME=VALUE" in result.output


@pytest.mark.skipif(_unavailable_reason("unet-bins") is not None, reason="unet-bins unavailable")
def test_resuming_with_other_options_recomputes_that_method(tmp_path: Path) -> None:
    out = tmp_path / "opts"
    args = ["--methods", "unet-bins,cnn", "--data", str(IMAGENET), "--out", str(out), "--limit", "1"]
    args += ["--samples", "0"]

    def colourfulness(vividness: str) -> dict[str, str]:
        code, output = _evaluate(*args, "--option", f"unet-bins.vividness={vividness}")
        assert code == 0, output
        return {r["method"]: r["colourfulness"] for r in _rows(out)}

    muted = colourfulness("0")
    vivid = colourfulness("1")  # not the rows of vividness 0 reported again
    assert float(vivid["unet-bins"]) > float(muted["unet-bins"]) and vivid["cnn"] == muted["cnn"]
    assert colourfulness("1")["unet-bins"] == vivid["unet-bins"]  # the same options: resumed


def test_evaluate_scores_weights_of_ones_own(tmp_path: Path) -> None:
    """--weights cnn=PATH: weights just trained are scored in place of the shipped ones (whose numbers
    --weights-dir used to give silently), and run.json says which file."""
    trained = tmp_path / "mine" / "cnn.pt"
    code, output = run_cli("train", "--arch", "cnn", "--data", str(IMAGENET), "--epochs", "1",
                           "--batch-size", "4", "--size", "32", "--limit", "4", "--out", str(trained),
                           "--no-progress")  # fmt: skip
    assert code == 0, output
    args = ("--methods", "cnn", "--data", str(IMAGENET), "--split", "val", "--limit", "2", "--samples", "0")
    code, output = _evaluate(*args, "--out", str(tmp_path / "shipped"))
    assert code == 0, output
    code, output = _evaluate(*args, "--out", str(tmp_path / "own"), "--weights", f"cnn={trained}")
    assert code == 0, output
    shipped = {r["image"]: r["auc"] for r in _rows(tmp_path / "shipped") if r["method"] == "cnn"}
    own = {r["image"]: r["auc"] for r in _rows(tmp_path / "own") if r["method"] == "cnn"}
    assert shipped.keys() == own.keys() and shipped != own  # a 1-epoch net colours otherwise
    record = json.loads((tmp_path / "own" / "run.json").read_text(encoding="utf-8"))
    assert record["weights"]["cnn"] == f"cnn.pt:{hashlib.sha256(trained.read_bytes()).hexdigest()[:16]}"
    for given, words in ((f"vgg16-hed={trained}", "not a trained method's weight file"),
                         (f"fusion={trained}", "holds weights for 'cnn', not 'fusion'"),
                         (f"cnn={tmp_path / 'none.pt'}", "No such file"),
                         ("cnn", "expected NAME=PATH")):  # fmt: skip
        code, output = _evaluate(*args, "--out", str(tmp_path / "bad"), "--weights", given)
        assert code == 2 and words in output, (given, output)


def test_scoring_the_training_split_says_so(tmp_path: Path) -> None:
    """--split all (the default) on a folder with a training split: the trained methods may have learnt those
    photos, and the output says how many there are."""
    code, output = _evaluate("--methods", "cnn", "--data", str(IMAGENET), "--out", str(tmp_path / "all"),
                             "--limit", "10", "--samples", "0")  # fmt: skip
    assert code == 0 and "photos are in this folder's training split (--split all)" in output, output
    code, output = _evaluate("--methods", "cnn", "--data", str(IMAGENET), "--out", str(tmp_path / "val"),
                             "--split", "val", "--limit", "2", "--samples", "0")  # fmt: skip
    assert code == 0 and "training split" not in output, output
