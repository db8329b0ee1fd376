"""Training: the split, crops, a few optimiser steps lower the loss, checkpoint/resume, weights and card."""

from __future__ import annotations

import os
import signal
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.conftest import IMAGENET
from worker.colorizers.datasets import PhotoDataset, class_index, is_validation_class, split_imagenet_samples
from worker.colorizers.nets.weights_file import load_weights
from worker.colorizers.training import trainer
from worker.colorizers.training.checkpoint import restore_torch_rng_states, torch_rng_states
from worker.colorizers.training.early_stopping import EarlyStopping
from worker.colorizers.training.interrupt import TrainingInterrupted
from worker.colorizers.training.recipes import Recipe, lab_batch, make_recipe
from worker.colorizers.training.trainer import TrainConfig, train

torch.set_num_threads(1)


def test_split_holds_out_whole_classes():
    split = split_imagenet_samples(IMAGENET)
    assert len(split.train) + len(split.val) == 800
    train_classes = {class_index(r.name) for r in split.train}
    val_classes = {class_index(r.name) for r in split.val}
    assert not train_classes & val_classes
    assert val_classes and all(is_validation_class(c) for c in val_classes)
    assert len(split.val) == 100


def test_zip_split_uses_test_folder(tmp_path: Path):
    src = sorted(IMAGENET.glob("*.jpg"))[:4]
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, p in enumerate(src):
            zf.write(p, f"{'test' if i == 0 else 'train'}/cat/{i:04d}.jpg")
    from worker.colorizers.datasets import split_paths

    split = split_paths(archive)
    assert [r.name for r in split.val] == ["test/cat/0000.jpg"]
    assert len(split.train) == 3
    crop, index = PhotoDataset(split.train, 32)[1]
    assert crop.shape == (3, 32, 32) and crop.dtype == torch.uint8 and index == 1


def test_crops_are_random_in_training_and_fixed_in_validation():
    refs = split_imagenet_samples(IMAGENET).train[:1]
    train_set, val_set = PhotoDataset(refs, 64, train=True, max_zoom=2.0), PhotoDataset(refs, 64, train=False)
    torch.manual_seed(0)
    crops = {bytes(train_set[0][0].numpy()) for _ in range(6)}
    assert len(crops) > 1
    assert torch.equal(val_set[0][0], val_set[0][0])


@pytest.mark.parametrize("arch", ["cnn", "gan"])
def test_a_few_steps_lower_the_loss_on_a_tiny_batch(arch):
    torch.manual_seed(0)
    refs = split_imagenet_samples(IMAGENET).train[:4]
    data = PhotoDataset(refs, 32, train=False)
    rgb = torch.stack([data[i][0] for i in range(4)])
    index = torch.arange(4)
    recipe = make_recipe(arch, lr=2e-3 if arch == "gan" else 1e-3)
    losses = [recipe.train_step(rgb, index)["loss"] for _ in range(10)]
    assert min(losses[-3:]) < losses[0]


def test_lab_batch_is_in_lab_units():
    rgb = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1)
    lightness, ab = lab_batch(rgb)
    assert torch.allclose(lightness, torch.tensor(53.2408), atol=1e-3)
    assert torch.allclose(ab, torch.tensor([80.0925, 67.2032]).view(1, 2, 1, 1), atol=1e-2)


def test_early_stopping():
    stop = EarlyStopping(patience=2)
    assert stop.update(1.0, 1) and not stop.should_stop
    assert not stop.update(1.1, 2) and not stop.should_stop
    assert stop.update(0.5, 3)
    stop.update(0.6, 4)
    stop.update(0.7, 5)
    assert stop.should_stop and stop.best_epoch == 3


def test_train_checkpoint_resume_weights_and_card(tmp_path: Path):
    out = tmp_path / "cnn.pt"
    common = dict(
        arch="cnn",
        data=str(IMAGENET),
        out=out,
        batch_size=4,
        size=32,
        limit=8,
        checkpoint=tmp_path / "cnn.ckpt",
        patience=0,
    )
    first = train(TrainConfig(epochs=1, **common), show_progress=False)
    assert first.epochs_run == 1 and out.is_file() and first.card.is_file()
    state = torch.load(tmp_path / "cnn.ckpt", weights_only=False)
    assert state["epoch"] == 0 and set(state["nets"]) == {"model"}
    second = train(TrainConfig(epochs=2, resume=True, **common), show_progress=False)
    assert second.epochs_run == 2
    assert [h["epoch"] for h in torch.load(tmp_path / "cnn.ckpt", weights_only=False)["history"]] == [1, 2]
    blob = load_weights(out, "cnn")
    assert blob["arch"] == "cnn" and blob["meta"]["epochs_run"] >= 1
    assert all(v.dtype == torch.float32 for v in blob["state_dict"].values())
    raw = torch.load(out, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    from worker.colorizers.nets.cnn import ColorizationCNN

    ColorizationCNN().load_state_dict(blob["state_dict"])
    card = first.card.read_text()
    for needle in ("Data:", "Epochs:", "Wall time:", "Validation metrics", "gray (ab = 0)", "Date:"):
        assert needle in card
    with pytest.raises(ValueError):
        load_weights(out, "gan")


def _cnn_run(tmp_path: Path, name: str, epochs: int, *, resume: bool = False, **changes: object) -> Path:
    out = tmp_path / name / "cnn.pt"
    options: dict = dict(arch="cnn", data=str(IMAGENET), out=out, batch_size=4, size=32, limit=8, patience=0)
    train(TrainConfig(epochs=epochs, resume=resume, **(options | changes)), show_progress=False)
    return out


def test_a_resumed_run_is_the_uninterrupted_one(tmp_path: Path):
    """1 epoch, then --resume to 2, gives the weights of 2 epochs at once: each epoch's photo order comes
    from the seed and the epoch (a resumed run reseeded its loader and saw other batches)."""
    whole = load_weights(_cnn_run(tmp_path, "whole", 2), "cnn")["state_dict"]
    _cnn_run(tmp_path, "halves", 1)
    halves = load_weights(_cnn_run(tmp_path, "halves", 2, resume=True), "cnn")["state_dict"]
    assert all(torch.equal(whole[k], halves[k]) for k in whole)


@pytest.mark.parametrize("arch", ["cnn", "gan"])
def test_ctrl_c_mid_epoch_keeps_its_batches_and_a_resume_is_the_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arch: str
):
    """A real SIGINT after the 2nd and then the 4th step of 2 epochs of 3 batches: each stop saves the batches
    trained so far (before, the epoch under way was lost), and the resumed runs end with the very networks
    and optimiser states of an uninterrupted run (the skipped batches are not re-read, the RNGs go on)."""
    options: dict = dict(arch=arch, data=str(IMAGENET), batch_size=4, size=32, limit=12, patience=0)

    def final_state(name: str) -> dict:
        return torch.load(tmp_path / name / "net.ckpt", weights_only=False)

    train(TrainConfig(epochs=2, out=tmp_path / "whole" / "net.pt", **options), show_progress=False)
    steps = 0
    make = trainer.make_recipe

    def interrupting_recipe(*args: object, **kwargs: object) -> Recipe:
        recipe = make(*args, **kwargs)
        step = recipe.train_step

        def step_then_maybe_signal(*step_args: object) -> dict[str, float]:
            nonlocal steps
            losses = step(*step_args)
            steps += 1
            if steps in (2, 4):
                os.kill(os.getpid(), signal.SIGINT)  # the loop sees it before the next batch
            return losses

        recipe.train_step = step_then_maybe_signal  # type: ignore[method-assign]
        return recipe

    monkeypatch.setattr(trainer, "make_recipe", interrupting_recipe)
    out = tmp_path / "stopped" / "net.pt"
    with pytest.raises(TrainingInterrupted) as first:
        train(TrainConfig(epochs=2, out=out, **options), show_progress=False)
    assert first.value.saved == "epoch 1's first 2 of 3 batches"
    partial = final_state("stopped")["partial"]
    assert (partial["epoch"], partial["batches"]) == (0, 2) and partial["loss_sum"] > 0
    with pytest.raises(TrainingInterrupted) as second:  # steps 3 (epoch 1's last) and 4 (epoch 2's first)
        train(TrainConfig(epochs=2, out=out, resume=True, **options), show_progress=False)
    assert second.value.saved == "epoch 2's first 1 of 3 batches"
    assert [row["epoch"] for row in final_state("stopped")["history"]] == [1]
    train(TrainConfig(epochs=2, out=out, resume=True, **options), show_progress=False)
    whole, resumed = final_state("whole"), final_state("stopped")
    assert resumed["partial"] is None and steps == 6
    for name, net in whole["nets"].items():
        assert all(torch.equal(net[k], resumed["nets"][name][k]) for k in net), name
    for name, optim in whole["optims"].items():
        state = optim["state"]
        assert all(
            torch.equal(state[i]["exp_avg"], resumed["optims"][name]["state"][i]["exp_avg"]) for i in state
        )
    assert [row["train_loss"] for row in resumed["history"]] == pytest.approx(
        [row["train_loss"] for row in whole["history"]]
    )


def test_the_weights_record_says_how_the_run_ended(tmp_path: Path):
    """The best epoch's weights are written once; their record (epochs run, why it stopped) is brought up to
    date after every epoch (it said "training in progress" and fewer epochs than the card)."""
    out = _cnn_run(tmp_path, "run", 3, patience=0)
    meta = load_weights(out, "cnn")["meta"]
    assert meta["stop_reason"] == "all epochs run" and len(meta["history"]) == 3, meta


def test_a_resume_with_other_options_is_refused(tmp_path: Path):
    _cnn_run(tmp_path, "run", 1)
    changed = r"lr 0\.5 \(the checkpoint's: 0\.001\); size 64 \(the checkpoint's: 32\)"
    with pytest.raises(ValueError, match=changed):
        _cnn_run(tmp_path, "run", 2, resume=True, lr=0.5, size=64)
    _cnn_run(tmp_path, "run", 2, resume=True, patience=3)  # the epochs and the patience may change


def test_an_unreadable_photo_is_named(tmp_path: Path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted(IMAGENET.glob("*.jpg"))[:12]:
        (photos / path.name).write_bytes(path.read_bytes())
    cut = sorted(photos.glob("*.jpg"))[0]
    cut.write_bytes(cut.read_bytes()[:600])  # a JPEG cut short: found only when its batch is read
    with pytest.raises(ValueError, match=f"{cut.name}: not a readable image"):
        config = TrainConfig(arch="cnn", data=str(photos), out=tmp_path / "w.pt", batch_size=4, size=32)
        train(replace(config, epochs=1), show_progress=False)


def test_a_sources_own_val_folder_decides_before_names_that_look_like_class_indices(tmp_path: Path):
    """Files named like ImageNet's ("021_photo.jpg", "2019_beach.jpg") under val/ were split by the name:
    9 of 10 validation photos were trained on."""
    from worker.colorizers.datasets import split_paths

    jpeg = next(IMAGENET.glob("*.jpg")).read_bytes()
    for folder, first in (("train", 0), ("val", 20)):
        (tmp_path / folder).mkdir()
        for i in range(first, first + 10):
            (tmp_path / folder / f"{i:03d}_photo.jpg").write_bytes(jpeg)
    split = split_paths(tmp_path)
    assert {Path(r.name).parent.name for r in split.train} == {"train"} and len(split.train) == 10
    assert {Path(r.name).parent.name for r in split.val} == {"val"} and len(split.val) == 10


def test_training_validation_reads_the_auc_evaluate_reports():
    import numpy as np

    from worker.colorizers import metrics
    from worker.colorizers.training.validation import ValidationStats

    gen = torch.Generator().manual_seed(0)
    truth = torch.randn(2, 2, 16, 16, generator=gen) * 30
    guess = torch.randn(2, 2, 16, 16, generator=gen) * 30
    stats = ValidationStats()
    stats.add(torch.full((2, 1, 16, 16), 50.0), truth, guess)
    expected = np.mean([
        metrics.raw_accuracy_auc(guess[i].permute(1, 2, 0).numpy(), truth[i].permute(1, 2, 0).numpy())
        for i in range(2)
    ])  # fmt: skip
    assert abs(stats.result()["auc"] - expected) < 1e-6


def test_a_checkpoint_made_on_a_gpu_resumes_on_the_cpu_with_the_cpu_s_random_state():
    """A GPU run keeps its device's RNG state too (dropout and noise drawn there); resumed where there is no
    such GPU, the CPU's state is restored and the device's is left (it fits no device here)."""
    states = torch_rng_states("cpu")
    assert set(states) == {"torch_rng"}
    made_on_a_gpu = {**states, "cuda_rng": [torch.zeros(16, dtype=torch.uint8)]}
    torch.rand(3)  # moves the CPU's generator on
    restore_torch_rng_states(made_on_a_gpu, "cuda")
    assert torch.equal(torch.get_rng_state(), states["torch_rng"])
