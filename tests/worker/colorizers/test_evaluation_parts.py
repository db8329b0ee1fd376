"""Pieces of the evaluation runner: photo selection, grayscale detection, references, summaries, figures."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from worker.colorizers.evaluation import figures, report
from worker.colorizers.evaluation.selection import find_reference, imagenet_label, is_grayscale, spread


def test_imagenet_label_from_file_name() -> None:
    assert imagenet_label("007_n01514859_hen.jpg") == 7
    assert imagenet_label("sub/981_n09835506_ballplayer.jpg") == 981
    assert imagenet_label("test/airplane/0001.jpg") is None
    assert imagenet_label("12_notawnid.jpg") is None


def test_spread_covers_the_whole_list() -> None:
    items = list(range(100))
    assert spread(items, None) == items
    assert spread(items, 200) == items
    assert spread(items, 4) == [0, 25, 50, 75]
    assert len(set(spread(items, 10))) == 10


def test_is_grayscale() -> None:
    ab = np.zeros((10, 10, 2))
    assert is_grayscale(ab)
    ab[0, 0] = (40, 40)  # 1 % of the pixels coloured: still grayscale
    assert is_grayscale(ab)
    ab[:2] = (5, 0)
    assert not is_grayscale(ab)


def test_find_reference(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "in1.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.jpg")
    assert find_reference(tmp_path, "photo.jpg") == tmp_path / "photo.jpg"
    assert find_reference(tmp_path, "sub/in1.jpg") == tmp_path / "in1.png"  # same stem, other suffix
    assert find_reference(tmp_path, "missing.jpg") is None
    assert find_reference(None, "photo.jpg") is None


def test_summary_means_and_markdown() -> None:
    rows = [
        {
            "image": "a",
            "method": "m",
            "eq9_acc": "0.2",
            "auc": "0.8",
            "psnr": "20",
            "ssim": "0.9",
            "colourfulness": "10",
            "dcf": "-5",
            "abs_dcf": "5",
            "top1": "1",
            "seconds": "0.1",
        },
        {
            "image": "b",
            "method": "m",
            "eq9_acc": "0.4",
            "auc": "0.9",
            "psnr": "inf",
            "ssim": "1.0",
            "colourfulness": "20",
            "dcf": "3",
            "abs_dcf": "3",
            "top1": "0",
            "seconds": "0.3",
        },
        {"image": "a", "method": "real", "colourfulness": "15", "top1": "1"},
    ]
    m, real = report.summarise_all(rows, ["m", "real"])
    assert m.images == 2 and math.isclose(m.eq9_acc, 0.3) and math.isclose(m.auc, 0.85)
    assert m.psnr == 20 and m.psnr_infinite == 1  # the infinite PSNR is counted, not averaged
    assert math.isclose(m.dcf, -1) and math.isclose(m.abs_dcf, 4) and m.top1 == 0.5
    assert real.colourfulness == 15 and math.isnan(real.auc)
    md = report.markdown_table([m, real])
    assert "20.00 (1×∞)" in md and "| real | 1 | – |" in md and "top-1" in md


def test_curves_svg_and_png(tmp_path: Path) -> None:
    t = np.arange(151)
    curves = {"gray": np.clip(t / 80, 0, 1), "cnn": np.clip(t / 60, 0, 1)}
    svg, png = figures.write_curves(curves, tmp_path / "curves", labels={"cnn": "cnn (AuC 0.80)"})
    root = ET.parse(svg).getroot()
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2 and lines[0].get("stroke-dasharray")  # gray baseline dashed
    texts = [el.text for el in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "cnn (AuC 0.80)" in texts and "150" in texts and "1.0" in texts
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape == (560, 900, 3) and (img < 128).any()


def test_contact_sheet(tmp_path: Path) -> None:
    a = np.full((32, 64, 3), 200, np.uint8)
    figures.contact_sheet([[a, None, a], [a, a, a]], ["gray", "cnn", "truth"], tmp_path / "s.png", cell=64)
    sheet = Image.open(tmp_path / "s.png")
    assert sheet.size == (4 + 3 * 68, 26 + 4 + 2 * 68)


def test_a_data_folder_that_cannot_be_read_stops_the_evaluation(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Scores over a set with a folder silently left out would be published as the whole set's."""
    import os

    import pytest

    from worker.colorizers.evaluation import EvaluationError
    from worker.colorizers.evaluation.selection import select_photos

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / folder / "p.png")
    real = os.scandir

    def scandir(path: object = ".") -> object:
        if str(path).endswith("/b"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(EvaluationError, match=r"cannot read the folder .*b: Permission denied"):
        select_photos(tmp_path)


def test_a_methods_fingerprint_covers_what_it_builds_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """exemplar starts from unet-bins-reference's colours: other unet-bins weights are other exemplar
    results, so its stored rows must not stand."""
    from backend.config import get_settings
    from worker.colorizers.evaluation.store import weights_fingerprint

    mine = tmp_path / "unet-bins.pt"
    mine.write_bytes(b"other weights")
    folder = get_settings().weights_dir
    shipped = weights_fingerprint("exemplar", folder)
    assert "unet-bins.pt:" in shipped and "reference-fusion.pt:" in shipped
    assert weights_fingerprint("exemplar", folder, {"unet-bins": mine}) != shipped
