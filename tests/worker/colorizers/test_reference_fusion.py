"""The learned last step of unet-bins-reference (worker/colorizers/nets/reference_fusion.py) and its trainer
(worker/colorizers/training/reference_fusion_trainer.py)."""

from __future__ import annotations

import csv
import os
import signal
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import photo
from worker.colorizers import colour_bins, lab
from worker.colorizers.loading import get_colorizer
from worker.colorizers.methods.unet_bins_reference import REFERENCE_FUSION
from worker.colorizers.nets.reference_fusion import ARCH, Fused, ReferenceFusion, at_vividness, decode_fused
from worker.colorizers.nets.unet_bins import UNetBinsColorizer
from worker.colorizers.nets.weights_file import load_weights
from worker.colorizers.reference_guided import ReferenceGuidedColorizer, guided_logits
from worker.colorizers.training import reference_fusion_trainer
from worker.colorizers.training.interrupt import TrainingInterrupted
from worker.colorizers.training.reference_fusion_trainer import (
    FusionTrainConfig,
    random_crops,
    train,
    training_pairs,
)

torch.set_num_threads(1)


def _inputs(q: int, h: int = 3, w: int = 4) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, q, h, w, generator=g) * 3
    log_prior = torch.log_softmax(torch.randn(1, q, h, w, generator=g) * 3, dim=1)
    decoded = torch.randn(1, 64, h, w, generator=g)
    return logits, log_prior, decoded, torch.rand(1, 1, h, w, generator=g), torch.full((1, 1, h, w), 50.0)


def test_an_untrained_fusion_is_the_hand_made_rule() -> None:
    bins = colour_bins.bins_tensor()
    logits, log_prior, *rest = _inputs(bins.shape[0])
    fused = ReferenceFusion()(logits, log_prior, *rest)
    torch.testing.assert_close(fused.alpha, torch.ones_like(fused.alpha))
    torch.testing.assert_close(fused.temperature, torch.full_like(fused.temperature, 0.38))
    torch.testing.assert_close(fused.chroma, torch.ones_like(fused.chroma))
    rule = colour_bins.annealed_mean(guided_logits(logits, log_prior.exp()), bins, 0.38)
    torch.testing.assert_close(decode_fused(fused, bins), rule, atol=1e-3, rtol=1e-4)


def test_the_committed_fusion_weighs_the_reference_by_location_and_vividness_works() -> None:
    colorizer = get_colorizer("unet-bins-reference", Path("/nonexistent"), "cpu")  # bundled weights
    assert isinstance(colorizer, ReferenceGuidedColorizer)
    blob = load_weights(REFERENCE_FUSION.path(Path("/nonexistent")), ARCH)
    assert blob["meta"]["history"], "the committed file records its training"
    bins = colour_bins.bins_tensor()
    logits, log_prior, *rest = _inputs(bins.shape[0], 8, 8)
    with torch.no_grad():
        fused = colorizer.fusion(logits, log_prior, *rest)
    assert float(fused.alpha.std()) > 0.01  # it does not apply one rule everywhere
    # On a real photo the vividness slider visibly changes the colours, not by the temperature's few per cent.
    target, reference = (np.asarray(Image.open(photo(name)).convert("RGB")) for name in ("975_", "970_"))
    lightness = lab.rgb_to_lab(target)[..., 0].astype(np.float32)

    def mean_chroma(vividness: float) -> float:
        ab = colorizer.predict_ab(lightness, reference=reference, params={"vividness": vividness})
        return float(np.linalg.norm(ab, axis=-1).mean())

    chroma = [mean_chroma(v) for v in (0.0, 0.5, 1.0)]
    assert chroma[0] < chroma[1] < chroma[2]
    assert chroma[2] > 1.2 * chroma[1] and chroma[0] < 0.9 * chroma[1], chroma


def test_vividness_lifts_or_deepens_the_learned_muting() -> None:
    g = torch.Generator().manual_seed(1)
    log_posterior = torch.log_softmax(torch.randn(1, 5, 2, 3, generator=g), dim=1)
    chroma = torch.tensor([[0.0, 0.25, 0.5], [1.0, 1.2, 1.5]]).reshape(1, 1, 2, 3)
    fused = Fused(log_posterior, torch.full_like(chroma, 0.5), chroma, torch.ones_like(chroma))
    default = at_vividness(fused, 0.5)  # the learned step's own choice, exactly
    assert torch.equal(default.chroma, chroma) and torch.equal(default.temperature, fused.temperature)
    assert torch.equal(default.log_posterior, log_posterior) and torch.equal(default.alpha, fused.alpha)
    vivid, safe = at_vividness(fused, 1.0), at_vividness(fused, 0.0)
    torch.testing.assert_close(vivid.chroma, chroma.clamp_min(1.0))  # muting lifted, boosts kept
    torch.testing.assert_close(safe.chroma, torch.where(chroma < 1, chroma**2, chroma))  # muting squared
    torch.testing.assert_close(vivid.temperature, fused.temperature * 0.38)  # as unet-bins' T: 0.38 → 0.38²
    torch.testing.assert_close(safe.temperature, fused.temperature / 0.38)  # 0.38 → 1
    assert torch.equal(at_vividness(fused, 7.0).chroma, vivid.chroma)  # clamped to [0, 1]
    levels = [at_vividness(fused, v).chroma for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(torch.all(a <= b) for a, b in pairwise(levels))  # never less colour


def _tiny_colour_photos(root: Path) -> None:
    """Two classes of four training photos (red or blue squares on gray) and one validation photo."""
    rows = []
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 1)):
        for label, colour in (("red", (200, 30, 30)), ("blue", (30, 60, 200))):
            for i in range(count):
                image = np.full((128, 160, 3), 128, np.uint8)
                y, x = rng.integers(0, 64, 2)
                image[y : y + 64, x : x + 64] = colour
                file = f"{split}/toys/{label}{i}.jpg"
                (root / file).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(root / file)
                rows.append({"file": file, "source": "caltech101", "path": f"images/{label}/{i}.jpg"})
    with (root / "MANIFEST.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["file", "source", "path"])
        writer.writeheader()
        writer.writerows(rows)


def test_training_pairs_are_same_class_training_photos(tmp_path: Path) -> None:
    _tiny_colour_photos(tmp_path)
    pairs = training_pairs(tmp_path, 40, self_share=0.25, seed=3)
    assert pairs == training_pairs(tmp_path, 40, self_share=0.25, seed=3)  # deterministic
    assert all(p.target.startswith("train/") for p in pairs)
    others = [p for p in pairs if p.reference is not None]
    assert 0 < len(pairs) - len(others) < 20  # some use the photo's own colours
    for pair in others:
        assert pair.reference != pair.target and pair.reference.startswith("train/")
        assert Path(pair.target).name[:3] == Path(pair.reference).name[:3]  # same class: red/red, blue/blue
    with pytest.raises(ValueError, match="colour-photos folder"):
        training_pairs(tmp_path / "train", 4, 0.25, 0)  # not the colour-photos folder
    (tmp_path / "MANIFEST.csv").write_text("file,source,path\n")
    with pytest.raises(ValueError, match="no class with two training photos"):
        training_pairs(tmp_path, 4, 0.25, 0)


def test_a_tiny_training_run_writes_weights_the_method_loads(tmp_path: Path) -> None:
    _tiny_colour_photos(tmp_path / "data")
    plain = get_colorizer("unet-bins", Path("/nonexistent"), "cpu")
    assert isinstance(plain, UNetBinsColorizer)
    out = tmp_path / "fusion.pt"
    config = FusionTrainConfig(
        data=tmp_path / "data",
        out=out,
        pairs=16,
        crop=16,
        train_crop=12,
        epochs=2,
        batch=8,
        lr=3e-3,
        threads=1,
    )
    meta = train(config, plain.net, show_progress=False)
    assert [row["epoch"] for row in meta["history"]] == [1, 2]
    assert all(np.isfinite(row["loss"]) for row in meta["history"])
    blob = load_weights(out, ARCH)
    fusion = ReferenceFusion(**blob["config"])
    fusion.load_state_dict(blob["state_dict"])
    assert float(fusion.out.weight.detach().abs().sum()) > 0  # it moved from the hand-made rule's zero start
    assert "colour-photos` training photos" in out.with_suffix(".md").read_text(encoding="utf-8")
    assert config.cache.is_file()
    stamp = config.cache.stat().st_mtime_ns
    train(config, plain.net, show_progress=False)  # same pairs: the cached inputs are reused
    assert config.cache.stat().st_mtime_ns == stamp
    guided = ReferenceGuidedColorizer(plain.net, fusion)
    photo = np.asarray(Image.open(tmp_path / "data/val/toys/red0.jpg").convert("RGB"))
    reference = np.asarray(Image.open(tmp_path / "data/train/toys/red1.jpg").convert("RGB"))
    ab = guided.predict_ab(photo[..., 0].astype(np.float32) / 2.55, reference=reference, params={})
    assert ab.shape[-1] == 2 and np.isfinite(ab).all()


def test_random_crops_take_a_part_of_each_window_and_refuse_a_larger_one() -> None:
    batch = torch.arange(2 * 3 * 8 * 10, dtype=torch.float32).reshape(2, 3, 8, 10)
    parts = random_crops(batch, 5, np.random.default_rng(0))
    assert parts.shape == (2, 3, 5, 5)
    for window, part in zip(batch, parts, strict=True):
        found = [
            (y, x)
            for y in range(4)
            for x in range(6)
            for view in (part, part.flip(-1))
            if torch.equal(window[:, y : y + 5, x : x + 5], view)
        ]
        assert len(found) == 1  # one window's part, maybe mirrored
    with pytest.raises(ValueError, match="larger than the cached windows"):
        random_crops(batch, 9, np.random.default_rng(0))


def test_a_training_crop_larger_than_the_cached_windows_fails_before_any_preparation(tmp_path: Path) -> None:
    _tiny_colour_photos(tmp_path / "data")
    config = FusionTrainConfig(
        data=tmp_path / "data", out=tmp_path / "fusion.pt", pairs=4, crop=16, train_crop=20
    )
    plain = get_colorizer("unet-bins", Path("/nonexistent"), "cpu")
    assert isinstance(plain, UNetBinsColorizer)
    with pytest.raises(ValueError, match="larger than the cached windows"):
        train(config, plain.net, show_progress=False)
    assert not config.cache.exists() and not (tmp_path / "fusion.pt").exists()


def _signal_on_calls(monkeypatch: pytest.MonkeyPatch, name: str, calls: set[int]) -> list[int]:
    """Wrap the trainer's function ``name`` to send this process a real SIGINT after its n-th call for each n
    of ``calls``; returns the count of calls (a one-element list)."""
    count = [0]
    function = getattr(reference_fusion_trainer, name)

    def then_signal(*args: object, **kwargs: object) -> object:
        result = function(*args, **kwargs)
        count[0] += 1
        if count[0] in calls:
            os.kill(os.getpid(), signal.SIGINT)  # the loop sees it before its next pair or step
        return result

    monkeypatch.setattr(reference_fusion_trainer, name, then_signal)
    return count


def test_a_stopped_preparation_and_training_go_on_to_the_uninterrupted_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real SIGINTs: after 5 of 16 pairs prepared (the cache keeps them: the resumed run prepares the other
    11), after step 1 and after step 3 of 2 epochs of 2 steps. Each stop says what is kept; the last resume
    ends with the very weights of a run never stopped (a stop used to lose the preparation and the epochs)."""
    _tiny_colour_photos(tmp_path / "data")
    plain = get_colorizer("unet-bins", Path("/nonexistent"), "cpu")
    assert isinstance(plain, UNetBinsColorizer)
    whole = FusionTrainConfig(data=tmp_path / "data", out=tmp_path / "whole" / "fusion.pt", pairs=16,
                              crop=16, train_crop=12, epochs=2, batch=8, lr=3e-3, threads=1)  # fmt: skip
    train(whole, plain.net, show_progress=False)
    stopped = replace(whole, out=tmp_path / "stopped" / "fusion.pt")
    prepared = _signal_on_calls(monkeypatch, "pair_sources", {5})
    with pytest.raises(TrainingInterrupted) as stop:
        train(stopped, plain.net, show_progress=False)
    assert stop.value.saved == "5 of 16 pairs prepared" and stop.value.checkpoint == stopped.cache
    steps = _signal_on_calls(monkeypatch, "fusion_loss", {1, 3})
    resumed = replace(stopped, resume=True)
    with pytest.raises(TrainingInterrupted) as stop:
        train(resumed, plain.net, show_progress=False)
    assert prepared[0] == 16 and stop.value.saved == "epoch 1's first 1 of 2 steps"
    assert stop.value.checkpoint == stopped.out.with_suffix(".ckpt")
    with pytest.raises(TrainingInterrupted) as stop:
        train(resumed, plain.net, show_progress=False)
    assert stop.value.saved == "epoch 2's first 1 of 2 steps" and not stopped.out.exists()
    meta = train(resumed, plain.net, show_progress=False)
    assert prepared[0] == 16 and steps[0] == 4
    assert np.array_equal(np.load(whole.cache), np.load(stopped.cache))
    expected, got = load_weights(whole.out, ARCH)["state_dict"], load_weights(stopped.out, ARCH)["state_dict"]
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert [row["epoch"] for row in meta["history"]] == [1, 2]
    with pytest.raises(ValueError, match=r"other options.*lr"):
        train(replace(resumed, lr=1e-2), plain.net, show_progress=False)
