"""The exemplar colorizer: exact losses, the 0.25% schedule, L-BFGS iteration counting, progress and cancel.

Mechanics (counting, shapes, cancellation) run on a small randomly initialised VGG-16 so they need no
download; the behaviour on a real exemplar pair needs the fetched VGG and skips with the reason otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import EXEMPLAR_PAIRS, WEIGHTS_DIR
from worker.colorizers import exemplar as ex
from worker.colorizers import lab
from worker.colorizers.base import IterationState, JobCancelled, Progress, StopEarly
from worker.colorizers.method_info import LoadContext, validate_params
from worker.colorizers.methods import exemplar as exemplar_method
from worker.colorizers.methods.exemplar import present_vgg_weights
from worker.colorizers.pipeline import colorize_rgb
from worker.colorizers.vgg import CAFFE_BGR, VGGFeatures

needs_vgg = pytest.mark.skipif(
    not present_vgg_weights(WEIGHTS_DIR), reason="no VGG weights: run `colorlab weights fetch vgg16-hed`"
)


@pytest.fixture(scope="module")
def random_vgg() -> VGGFeatures:
    torch.manual_seed(0)
    return VGGFeatures("vgg16", CAFFE_BGR, "relu5_1")


@pytest.fixture(scope="module")
def real() -> ex.ExemplarColorizer:
    colorizer = exemplar_method.load(LoadContext(WEIGHTS_DIR, "cpu"))  # its own, not the cached one
    assert isinstance(colorizer, ex.ExemplarColorizer)
    return colorizer


def _counting(model: VGGFeatures) -> tuple[VGGFeatures, list[tuple[int, ...]]]:
    calls: list[tuple[int, ...]] = []
    forward = type(model).forward

    class Counting(VGGFeatures):
        def forward(self, rgb, taps):  # type: ignore[no-untyped-def,override]
            calls.append(tuple(rgb.shape))
            return forward(self, rgb, taps)

    counted = Counting.__new__(Counting)
    counted.__dict__ = dict(model.__dict__)
    return counted, calls


def _pair(name: str = "example", n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    folder = EXEMPLAR_PAIRS / name
    target = np.asarray(Image.open(next(folder.glob(f"in{n}.*"))).convert("RGB"))
    ref = np.asarray(Image.open(next(folder.glob(f"ref{n}.*"))).convert("RGB"))
    return target, ref


def _params(**values: object) -> dict:
    return validate_params(exemplar_method.INFO, values)


# --- losses ---------------------------------------------------------------------------------------------


def test_content_loss_is_half_the_sum_of_squares() -> None:
    f = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 2, 1, 2)
    p = torch.tensor([0.0, 2.0, 5.0, 1.0]).view(1, 2, 1, 2)
    assert float(ex.content_loss(f, p)) == pytest.approx(0.5 * (1 + 0 + 4 + 9))


def test_gram_and_style_loss_by_hand() -> None:
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # N = 2 channels, M = 2 positions
    g = ex.gram(f)
    assert g.tolist() == [[5.0, 11.0], [11.0, 25.0]]
    a = torch.eye(2)
    x = torch.rand(1, 3, 4, 5)  # the channels_last path (a free view) gives the same Gram
    torch.testing.assert_close(ex.gram(x.contiguous(memory_format=torch.channels_last)), ex.gram(x))
    # E = Σ(G − A)² / (4 N² M²) = (16 + 121 + 121 + 576) / (4·4·4)
    assert float(ex.style_layer_loss(g, a, 2, 2)) == pytest.approx(834 / 64)
    # five layers, w_l = 1/5 each
    feats = {name: f * (i + 1) for i, name in enumerate(ex.STYLE_LAYERS)}
    targets = {name: a for name in ex.STYLE_LAYERS}
    by_hand = sum(float((ex.gram(feats[n]) - a).pow(2).sum()) / 64 for n in ex.STYLE_LAYERS) / 5
    assert float(ex.style_loss(feats, targets)) == pytest.approx(by_hand, rel=1e-6)


def test_style_weight_schedule_decreases_by_a_quarter_percent_per_iteration() -> None:
    assert ex.style_weight(1000.0, 1, "decreasing") == 1000.0
    assert ex.style_weight(1000.0, 2, "decreasing") == pytest.approx(997.5)
    assert ex.style_weight(1000.0, 1000, "decreasing") == pytest.approx(1000 * 0.9975**999)
    assert ex.style_weight(1000.0, 1000, "fixed") == 1000.0


# --- optimisation mechanics (random VGG) ------------------------------------------------------------------


def test_torch_lbfgs_with_max_iter_1_is_one_iteration_per_step_and_keeps_history() -> None:
    x = torch.tensor([3.0, -2.0], requires_grad=True)
    opt = torch.optim.LBFGS([x], max_iter=1, history_size=10, tolerance_grad=0.0, tolerance_change=0.0)
    evals = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (x[0] ** 2 + 10 * x[1] ** 2) / 2
        loss.backward()
        evals.append(1)
        return loss

    for _ in range(4):
        opt.step(closure)
    state = opt.state[x]
    assert state["n_iter"] == 4 and state["func_evals"] == 4 and len(evals) == 4
    assert len(state["old_dirs"]) == 3  # curvature pairs carried across step() calls


@pytest.mark.parametrize("optimizer,line_search", [("lbfgs", False), ("sgd", False), ("lbfgs", True)])
def test_iterations_are_counted_and_targets_computed_once(
    random_vgg: VGGFeatures, optimizer: str, line_search: bool
) -> None:
    model, calls = _counting(random_vgg)
    rng = np.random.default_rng(0)
    lightness = rng.uniform(20, 80, (40, 60)).astype(np.float32)
    reference = rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)
    settings = ex.ExemplarSettings(iterations=6, size=32, optimizer=optimizer, line_search=line_search)
    steps: list[Progress] = []
    problem = ex.StyleTransfer(model, lightness, reference, settings)
    assert len(calls) == 2  # content target + reference Grams, once
    result = problem.run(steps.append)
    assert result.evaluations == len(calls) - 2
    if line_search:  # a line search may add evaluations, never iterations; the start point is reused
        assert 6 <= result.evaluations <= 6 * (1 + ex.MAX_LINE_SEARCH)
    else:
        assert len(calls) == 2 + 6  # exactly one VGG pass per iteration
    # step 0 once the targets are ready (the iterations' own time starts), then one report per iteration
    assert [p.step for p in steps] == list(range(0, 7)) and all(p.total == 6 for p in steps)
    steps = steps[1:]
    assert [p.losses["style_weight"] for p in steps] == pytest.approx([1000 * 0.9975**k for k in range(6)])
    assert set(steps[0].losses) == {"content", "style", "smoothness", "total", "style_weight"}
    if optimizer == "lbfgs":  # torch's own count of L-BFGS iterations (one per step() call)
        state = problem.optimiser.state[problem.x]
        assert state["n_iter"] == 6
        assert line_search or state["func_evals"] == 6
    assert result.ab.shape == (32, 48, 2) and result.ab.dtype == np.float32
    preview = steps[-1].preview()
    assert preview.shape == (32, 48, 3) and preview.dtype == np.uint8


def test_fixed_schedule_and_paper_mode_settings() -> None:
    s = ex.ExemplarSettings.from_params(_params(mode="paper"))
    assert (s.space, s.iterations, s.optimizer, s.schedule, s.init, s.size) == (
        "rgb",
        1000,
        "lbfgs",
        "decreasing",
        "content",
        256,
    )
    fast = ex.ExemplarSettings.from_params(_params())
    assert (fast.space, fast.init, fast.iterations) == ("ab", "matched", 50)  # from the matched colours
    gray_start = ex.ExemplarSettings.from_params(_params(init="content"))
    assert (gray_start.init, gray_start.iterations) == ("content", 150)
    assert ex.ExemplarSettings.from_params(_params(iterations=7, schedule="fixed")).iterations == 7


def test_cancel_stops_within_one_iteration(random_vgg: VGGFeatures) -> None:
    model, calls = _counting(random_vgg)
    colorizer = ex.ExemplarColorizer(model, "random")
    seen: list[int] = []
    at_cancel: list[int] = []

    def progress(p: Progress) -> None:
        seen.append(p.step)
        if p.step == 3:
            at_cancel.append(len(calls))
            raise JobCancelled

    lightness = np.full((32, 32), 50, np.float32)
    with pytest.raises(JobCancelled):
        colorizer.predict_ab(
            lightness,
            reference=np.zeros((32, 32, 3), np.uint8),
            params=_params(iterations=50, size=32, line_search=False, init="content"),
            progress=progress,
        )
    assert seen == [0, 0, 1, 2, 3]  # preparing, the targets ready, then the iterations
    assert len(calls) == at_cancel[0]  # no VGG pass after the callback raised


def test_stop_early_keeps_the_colours_reached(random_vgg: VGGFeatures) -> None:
    """A progress callback that raises StopEarly after an iteration (the job's time is up) ends the run there
    with its result, unlike a cancel."""
    model, calls = _counting(random_vgg)
    colorizer = ex.ExemplarColorizer(model, "random")

    def progress(p: Progress) -> None:
        if p.step == 3:
            raise StopEarly("time is up")

    ab = colorizer.predict_ab(
        np.full((32, 32), 50, np.float32),
        reference=np.full((32, 32, 3), (200, 40, 30), np.uint8),
        params=_params(iterations=50, size=32, line_search=False, init="content"),
        progress=progress,
    )
    assert ab.shape == (32, 32, 2) and np.isfinite(ab).all()
    result = colorizer.last_result
    assert result is not None and len(result.losses) == 3
    assert len(calls) == 2 + 3  # the targets, then three iterations: none after the stop


@pytest.mark.parametrize("mode,init", [("fast", "noise"), ("paper", "noise"), ("paper", "content")])
def test_shapes_for_every_parametrisation(random_vgg: VGGFeatures, mode: str, init: str) -> None:
    colorizer = ex.ExemplarColorizer(random_vgg, "random")
    ab = colorizer.predict_ab(
        np.full((50, 100), 40, np.float32),
        reference=np.zeros((20, 20), np.uint8),
        params=_params(mode=mode, init=init, iterations=2, size=32),
        progress=None,
    )
    assert ab.shape == (32, 64, 2) and np.isfinite(ab).all()


@pytest.mark.parametrize("shape", [(8, 8), (4, 300), (1, 1000)])
@pytest.mark.parametrize("mode", ["fast", "paper"])
def test_tiny_and_thin_photos_and_references(
    random_vgg: VGGFeatures, shape: tuple[int, int], mode: str
) -> None:
    # VGG's pools leave nothing of a side under 16 px: such sides are stretched to MIN_WORKING_SIDE (both
    # images) and the result is resized back to the photo.
    colorizer = ex.ExemplarColorizer(random_vgg, "random")
    params = _params(mode=mode, init="content", iterations=2, size=32)
    ab = colorizer.predict_ab(
        np.full(shape, 40, np.float32), reference=np.zeros((1, 1, 3), np.uint8), params=params, progress=None
    )
    assert ab.shape[:2] == ex.working_shape(*shape, 32) and np.isfinite(ab).all()
    rgb = colorize_rgb(
        colorizer, np.full((*shape, 3), 90, np.uint8), reference=np.zeros((2, 3, 3), np.uint8), params=params
    )
    assert rgb.shape == (*shape, 3)


def test_the_working_image_is_the_photo_at_size_and_a_panorama_no_longer_than_four_sides() -> None:
    """The VGG passes take memory by the working pixel: a panorama's long side is capped at four short sides
    (a 256 × 20,000 strip was 13 GB an iteration), a photo of ordinary shape keeps its short side."""
    assert ex.working_shape(768, 1024, 256) == (256, 341)
    assert ex.working_shape(1024, 4096, 256) == (256, 1024)  # 4:1 as it is
    assert ex.working_shape(256, 20_000, 256) == (ex.MIN_WORKING_SIDE, 1024)  # 78:1 made 1024 long
    assert ex.working_shape(1000, 40_000, 1024) == (102, 4096)
    assert ex.working_shape(4, 300, 32) == (ex.MIN_WORKING_SIDE, 128)  # thin: stretched to the minimum
    assert ex.working_shape(100, 120, 256) == (100, 120)  # never upscaled


def test_reference_is_required(random_vgg: VGGFeatures) -> None:
    with pytest.raises(ValueError, match="reference"):
        ex.ExemplarColorizer(random_vgg, "random").predict_ab(
            np.zeros((8, 8), np.float32), reference=None, params=_params(), progress=None
        )


# --- on a real pair with the fetched VGG ----------------------------------------------------------------


@needs_vgg
@pytest.mark.parametrize("mode", ["fast", "paper"])
def test_real_pair_lowers_the_loss_and_gives_chroma(real: ex.ExemplarColorizer, mode: str) -> None:
    target, ref = _pair()
    lightness = lab.rgb_to_lightness(target)
    params = _params(mode=mode, iterations=15, size=48, init="content")  # the paper's start: from gray
    ab = real.predict_ab(lightness, reference=ref, params=params, progress=None)
    history = real.last_result.losses
    assert history[-1]["style"] < 0.5 * history[0]["style"]
    assert history[-1]["total"] < history[0]["total"]
    chroma = float(np.sqrt((ab**2).sum(-1)).mean())
    assert chroma > 3, chroma
    assert ab.shape[0] == 48 and abs(ab.shape[1] / ab.shape[0] - target.shape[1] / target.shape[0]) < 0.05


@needs_vgg
def test_init_matched_starts_from_the_reference_guided_colours_and_stays_near_them(
    real: ex.ExemplarColorizer,
) -> None:
    target, ref = _pair()
    lightness = lab.rgb_to_lightness(target)
    assert real.guide is not None
    start, _ = real.guide.colorize_with_confidence(lightness, ref, {})
    ab = real.predict_ab(lightness, reference=ref, params=_params(iterations=10, size=48), progress=None)
    losses = real.last_result.losses
    assert {"anchor", "smoothness"} <= set(losses[0]) and losses[-1]["total"] < losses[0]["total"]
    start_small = (
        np.asarray(Image.fromarray(start[..., 0]).resize(ab.shape[1::-1])),
        np.asarray(Image.fromarray(start[..., 1]).resize(ab.shape[1::-1])),
    )
    drift = np.sqrt((ab[..., 0] - start_small[0]) ** 2 + (ab[..., 1] - start_small[1]) ** 2).mean()
    chroma = float(np.sqrt((ab**2).sum(-1)).mean())
    assert drift < 0.5 * chroma, (drift, chroma)  # refined, not replaced
    with pytest.raises(ValueError, match="unet-bins"):
        ex.ExemplarColorizer(real.vgg, "vgg").predict_ab(lightness, reference=ref, params=_params(),
                                                        progress=None)  # fmt: skip


@needs_vgg
def test_smoothness_removes_speckle_in_flat_areas(real: ex.ExemplarColorizer) -> None:
    target, ref = _pair()
    lightness = lab.rgb_to_lightness(target)

    def roughness_and_chroma(smoothness: float) -> tuple[float, float]:
        params = _params(init="content", smoothness=smoothness, iterations=20, size=64)
        ab = real.predict_ab(lightness, reference=ref, params=params, progress=None)
        roughness = np.abs(np.diff(ab, axis=0)).mean() + np.abs(np.diff(ab, axis=1)).mean()
        return float(roughness), float(np.hypot(ab[..., 0], ab[..., 1]).mean())

    rough_off, chroma_off = roughness_and_chroma(0.0)
    rough_strong, chroma_strong = roughness_and_chroma(5.0)
    assert rough_strong < 0.2 * rough_off
    # Still coloured: with |step| itself, the kink at 0 kept a gray start gray from smoothness 3 on.
    assert chroma_strong > 0.3 * chroma_off


@needs_vgg
def test_output_keeps_the_input_lightness(real: ex.ExemplarColorizer) -> None:
    target, ref = _pair("example", 2)
    out = colorize_rgb(real, target, reference=ref, params=_params(iterations=10, size=48))
    assert out.shape == target.shape
    diff = np.abs(lab.rgb_to_lightness(out) - lab.rgb_to_lightness(target))
    assert float(diff.max()) < 1.0  # 8-bit rounding of the composed RGB only
    assert float(np.sqrt((lab.rgb_to_lab(out)[..., 1:] ** 2).sum(-1)).mean()) > 3


@needs_vgg
def test_loaded_through_the_method_list() -> None:
    from worker.colorizers.loading import get_colorizer

    colorizer = get_colorizer("exemplar", WEIGHTS_DIR)
    assert colorizer.name == "exemplar" and isinstance(colorizer, ex.ExemplarColorizer)
    assert colorizer.weights_name == present_vgg_weights(WEIGHTS_DIR)[0].name


# --- going on from a saved state (a worker restarted mid-job) ----------------------------------------------


def test_iteration_state_round_trips_and_refuses_other_bytes() -> None:
    state = IterationState(7, {"x": np.arange(6, dtype=np.float32).reshape(1, 2, 3)}, {"loss_scale": 2.5})
    back = IterationState.from_bytes(state.to_bytes())
    assert back.step == 7 and back.values == {"loss_scale": 2.5}
    np.testing.assert_array_equal(back.arrays["x"], state.arrays["x"])
    assert IterationState.from_bytes(IterationState(3, {}).to_bytes()) == IterationState(3, {}, {})
    for junk in (b"", b"not a zip", b"PK\x03\x04" + bytes(40)):
        with pytest.raises(ValueError, match="saved state"):
            IterationState.from_bytes(junk)


def _states_of(  # type: ignore[no-untyped-def]
    colorizer: ex.ExemplarColorizer, params: dict, *, resume: IterationState | None = None, width: int = 48
):
    """Run it on a small photo, keeping every step's saved state and what the progress reports said."""
    states: dict[int, IterationState] = {}
    reports: list[Progress] = []

    def progress(p: Progress) -> None:
        reports.append(p)
        if p.state is not None:
            states[p.step] = p.state()

    rng = np.random.default_rng(0)
    lightness = rng.uniform(20, 80, (32, width)).astype(np.float32)
    reference = np.full((32, 32, 3), (200, 40, 30), np.uint8)
    ab = colorizer.predict_ab(lightness, reference=reference, params=params, progress=progress, resume=resume)
    return ab, states, reports


@pytest.mark.parametrize("options", [{"optimizer": "lbfgs"}, {"optimizer": "sgd"}, {"mode": "paper"}])
def test_a_run_goes_on_from_a_saved_state(random_vgg: VGGFeatures, options: dict) -> None:
    model, calls = _counting(random_vgg)
    colorizer = ex.ExemplarColorizer(model, "random")
    params = _params(iterations=8, size=32, init="content", **options)
    uninterrupted, states, _ = _states_of(colorizer, params)
    assert sorted(states) == list(range(1, 9))
    saved = IterationState.from_bytes(states[5].to_bytes())  # as the database gives it back
    calls.clear()
    ab, later, reports = _states_of(colorizer, params, resume=saved)
    assert [p.step for p in reports] == [0, 0, 6, 7, 8]  # preparing, targets, then iterations 6..8
    assert "going on from iteration 5" in reports[1].message
    assert len(colorizer.last_result.losses) == 3 and len(calls) >= 2 + 3  # targets, then 3 iterations
    assert later[8].step == 8 and np.isfinite(ab).all()
    if options.get("optimizer") == "sgd":  # its step size is the first iteration's, kept in the state
        assert later[8].values["sgd_lr"] == states[8].values["sgd_lr"]
    # saved at the last step (stopped while its result was being stored): nothing is left to run, and the
    # result is the uninterrupted run's
    again, none_run, reports = _states_of(colorizer, params, resume=states[8])
    assert not none_run and [p.step for p in reports] == [0, 0]
    np.testing.assert_array_equal(again, uninterrupted)


def test_a_state_of_another_photo_or_options_is_ignored(random_vgg: VGGFeatures) -> None:
    colorizer = ex.ExemplarColorizer(random_vgg, "random")
    _, states, _ = _states_of(colorizer, _params(iterations=3, size=32, init="content"))
    params = _params(iterations=3, size=32, init="content")
    _, _, reports = _states_of(colorizer, params, resume=states[2], width=64)
    assert [p.step for p in reports] == [0, 0, 1, 2, 3]  # another photo's shape: from the start
    other = _params(iterations=3, size=32, init="content", smoothness=2.0)  # the same shapes, other options
    _, _, reports = _states_of(colorizer, other, resume=states[2])
    assert [p.step for p in reports] == [0, 0, 1, 2, 3]
    _, _, reports = _states_of(colorizer, _params(iterations=9, size=32, init="content"), resume=states[2])
    assert [p.step for p in reports][:3] == [0, 0, 3]  # more iterations: the same run, gone on with


@needs_vgg
def test_a_resumed_run_ends_where_an_uninterrupted_one_does(real: ex.ExemplarColorizer) -> None:
    """A fresh L-BFGS from the saved state rebuilds its curvature memory within a few iterations: the loss
    after the same number of iterations is within a few percent (0.02 % in fast mode at 128 px, 2.3 % in paper
    mode: benchmarks/RESULTS.md)."""
    target, ref = _pair()
    lightness = lab.rgb_to_lightness(target)
    params = _params(iterations=20, size=64)
    saved: list[IterationState] = []

    def progress(p: Progress) -> None:
        if p.step == 10 and p.state is not None:
            saved.append(IterationState.from_bytes(p.state().to_bytes()))

    real.predict_ab(lightness, reference=ref, params=params, progress=progress)
    losses = real.last_result.losses
    real.predict_ab(lightness, reference=ref, params=params, progress=None, resume=saved[0])
    resumed = real.last_result.losses
    assert len(resumed) == 10 and resumed[-1]["total"] < losses[9]["total"]  # went on, and lower
    assert resumed[-1]["total"] < 1.05 * losses[-1]["total"], (resumed[-1], losses[-1])
