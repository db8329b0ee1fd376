"""Exemplar colorization by VGG style transfer (Nguyen, Mori & Thawonmas 2016, after Gatys et al. 2015).

An image x is optimised so that its VGG features carry the *content* of the gray photo p and the *style* of
the color reference a. With F^l (N_l × M_l) the activations of x at layer l (N_l channels, M_l = H_l·W_l),
P^l those of p, G^l = F^l F^lᵀ and A^l the Gram matrices of x and a:

    L_content = ½ Σ_ij (F^l_ij − P^l_ij)²                       at l = conv4_2
    E_l       = Σ_ij (G^l_ij − A^l_ij)² / (4 N_l² M_l²)
    L_style   = Σ_l w_l E_l,  w_l = 1/5          at l ∈ {conv1_1, conv2_1, conv3_1, conv4_1, conv5_1}
    L_total   = α L_content + β_k L_style

Layers are read after their ReLU (relu4_2, relu1_1, ...), as in Gatys et al.'s and Johnson's neural-style
code that the paper ran. Style-weight schedule ("decreasing", the paper's): β/α shrinks by 0.25% after every
iteration; with α fixed, β_k = β_0 · 0.9975^(k−1) is the weight used in iteration k = 1..N
(``fixed``: β_k = β_0).

Optimisers: L-BFGS (``torch.optim.LBFGS`` with ``max_iter=1``: one ``step()`` is exactly one iteration, i.e.
one update of x; its curvature history lives in the optimiser state and carries over between calls; the
tests check ``state["n_iter"]``). By default with a strong-Wolfe line search: without one, L-BFGS's unit
step overshoots badly in the ab parametrisation (|ab| jumped to 3000 within 15 iterations in our tests).
The line search usually accepts its first trial point, so an iteration costs one VGG pass (the start point's
evaluation is reused from the previous line search; see ``closure``); ``line_search=False`` gives the fixed
unit steps of the neural-style code the paper ran. SGD: momentum 0.9, step size ``lr`` divided by the mean
|gradient| of the first iteration (so ``lr`` is in pixel units whatever the loss scale).

Parametrisations:

* ``paper`` mode optimises the RGB image itself (init: the gray photo as RGB, or noise) for 1000 iterations;
  the result's ab is taken and the pipeline joins it with the photo's own L.
* ``fast`` mode (our default) optimises only a and b of a Lab image whose L is the photo's own
  (x = lab→rgb(L, upsample(ab)), differentiable), with a and b on a grid twice as coarse as the working size
  (chroma is smooth; this removes the per-pixel colour speckle that a full-resolution ab develops): the
  luminance cannot drift, there are 6× fewer unknowns, and the optimisation reaches a good colorization
  in ~150 iterations. Compared with ``paper`` in benchmarks/RESULTS.md.

Progress: after every iteration, ``Progress(step=k, total=N, losses={content, style, total, style_weight})``
with a ``preview`` closure that renders the current colorization only when the consumer calls it. The
callback may raise ``JobCancelled``, which propagates: a cancel stops within one iteration; ``StopEarly``
after an iteration ends the optimisation there with the colours it has reached (a job's time limit). Its
``state`` closure gives the state after that iteration (x, the loss scale, SGD's step size); handed back
as ``resume`` (a worker restarted mid-job), the run goes on from the next iteration with the same targets
and β schedule, and a fresh optimiser (L-BFGS's curvature memory is rebuilt within a few iterations).

The reference's Gram matrices and the content target are computed once, before the loop; the VGG is truncated
after relu5_1; so an iteration costs one forward and one backward pass of that truncated VGG plus the small
Gram products (benchmarks/bench_exemplar.py measures it against a bare pass).
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from worker.colorizers import lab as labmod
from worker.colorizers.base import IterationState, Progress, ProgressCallback, StopEarly
from worker.colorizers.manifest import WeightFile
from worker.colorizers.methods.exemplar import planned_iterations, resolved_init
from worker.colorizers.nets.colorizer import channels_last
from worker.colorizers.pipeline import compose
from worker.colorizers.reference_guided import ReferenceGuidedColorizer
from worker.colorizers.vgg import VGGFeatures, load_vgg

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STYLE_DECAY = 0.9975  # β ← 0.9975·β after every iteration: "β/α decreased by 0.25%"
SGD_MOMENTUM = 0.9
LBFGS_HISTORY = 100
MAX_LINE_SEARCH = 10  # most extra evaluations one L-BFGS line search may spend
AB_NOISE_STD = 20.0  # ab units, for init="noise" in fast mode
AB_UNIT = 10.0  # ab units: a deviation of this size counts as 1 in the anchor and smoothness terms
EDGE_L = 5.0  # L units: an L step of this size lets ab change e times more freely across it
# ab units: below this step the smoothness term is quadratic, not |step|. Plain |step| has a kink at 0 that
# trapped a gray start (init=content): from smoothness 3 on, no line search left it and the photo stayed gray.
TV_EPSILON = 1.0
# The saved state's meaning (x's parametrisation, the loss terms): a change of recipe bumps it, and a job
# saved by an older worker starts afresh instead of going on from a state that means something else.
STATE_FORMAT = 1


# ---------------------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------------------


def gram(features: torch.Tensor) -> torch.Tensor:
    """G = F Fᵀ for activations (1, N, H, W) viewed as F (N × M), M = H·W. Not normalised."""
    n = features.shape[1]
    if features.dim() == 4 and features.is_contiguous(memory_format=torch.channels_last):
        flat = features.permute(0, 2, 3, 1).reshape(-1, n)  # (M, N), a free view in channels_last
        return flat.t() @ flat
    flat = features.reshape(n, -1)
    return flat @ flat.t()


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """½ Σ (F − P)²."""
    return 0.5 * (features - target).pow(2).sum()


def style_layer_loss(
    gram_x: torch.Tensor, gram_target: torch.Tensor, channels: int, positions: int
) -> torch.Tensor:
    """E_l = Σ (G − A)² / (4 N² M²), computed as Σ ((G − A) / (2 N M))² to stay within float32 range."""
    return ((gram_x - gram_target) / (2.0 * channels * positions)).pow(2).sum()


def style_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Σ_l w_l E_l with w_l = 1 / (number of style layers)."""
    weight = 1.0 / len(targets)
    total = features[next(iter(targets))].new_zeros(())
    for name, target in targets.items():
        f = features[name]
        total = total + weight * style_layer_loss(gram(f), target, f.shape[1], f.shape[2] * f.shape[3])
    return total


def style_weight(beta: float, iteration: int, schedule: str) -> float:
    """β used in iteration ``iteration`` (1-based): β·0.9975^(iteration−1) when decreasing, else β."""
    return beta * STYLE_DECAY ** (iteration - 1) if schedule == "decreasing" else beta


# ---------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------


# VGG's deepest style layer (conv5_1) lies after four 2x poolings and the ab grid is twice as coarse again:
# a side below this is stretched up to it (the result is resized back to the photo anyway).
MIN_WORKING_SIDE = 32


# The long side is at most this many short sides: a panorama's VGG passes take memory by the pixel (about
# 2.6 KB each), so a 256 × 20,000 strip would take 13 GB an iteration; beyond 4:1 the short side gives way.
MAX_WORKING_ASPECT = 4


def working_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) with the short side ``short_side`` (never upscaling) and the aspect ratio kept, the long side
    at most MAX_WORKING_ASPECT short sides (a panorama is made smaller still); a side shorter than
    MIN_WORKING_SIDE (a tiny or very thin photo) is stretched to it."""
    scale = min(1.0, short_side / min(height, width), MAX_WORKING_ASPECT * short_side / max(height, width))
    return max(MIN_WORKING_SIDE, round(height * scale)), max(MIN_WORKING_SIDE, round(width * scale))


def resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    if plane.shape == (height, width):
        return plane.astype(np.float32, copy=False)
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(
        image.resize(
            (width, height), Image.Resampling.BOX if plane.shape[0] > height else Image.Resampling.BILINEAR
        ),
        dtype=np.float32,
    )


def resize_rgb(rgb: np.ndarray, short_side: int) -> np.ndarray:
    h, w = working_shape(rgb.shape[0], rgb.shape[1], short_side)
    if (h, w) == rgb.shape[:2]:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS))


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None].to(device)


# ---------------------------------------------------------------------------------------------------------
# The optimisation
# ---------------------------------------------------------------------------------------------------------


def _smooth_abs(step: torch.Tensor) -> torch.Tensor:
    """|step| with the kink at 0 rounded off (Charbonnier): sqrt(step² + ε²) − ε, ε = :data:`TV_EPSILON`."""
    return torch.sqrt(step * step + TV_EPSILON**2) - TV_EPSILON


@dataclass(frozen=True)
class ExemplarSettings:
    """Resolved options (their descriptions: :mod:`worker.colorizers.methods.exemplar`)."""

    space: str = "ab"  # "ab" (L fixed, fast mode) or "rgb" (the paper)
    iterations: int = 150
    size: int = 256
    optimizer: str = "lbfgs"
    schedule: str = "decreasing"
    alpha: float = 1.0
    beta: float = 1000.0
    init: str = "content"  # content (gray, the paper), noise, or matched (the reference-guided colours)
    # ab mode: pull towards the matched colours, weighted by the match's confidence; 4 rather than 1: at 1
    # the style term drew near-gray scenes away from gray (benchmarks/RESULTS.md, issue 12)
    anchor: float = 4.0
    smoothness: float = 1.0  # ab mode: edge-aware total variation of ab (colours change at L edges only)
    lr: float = 2.0
    seed: int = 0
    line_search: bool = True  # L-BFGS: strong-Wolfe line search (else a fixed step of 1, as neural-style)
    chroma_stride: int = 2  # ab mode: a, b live on a grid this many times coarser, upsampled bilinearly

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ExemplarSettings:
        mode = params.get("mode", "fast")
        iterations = planned_iterations(params)
        init = resolved_init(params)
        names = (
            "size",
            "optimizer",
            "schedule",
            "alpha",
            "beta",
            "anchor",
            "smoothness",
            "lr",
            "seed",
            "line_search",
            "chroma_stride",
        )
        known = {k: params[k] for k in names if k in params}
        return cls(space="rgb" if mode == "paper" else "ab", iterations=iterations, init=init, **known)


@dataclass(frozen=True)
class MatchedStart:
    """Where ``init=matched`` starts: the reference-guided colours and the match's confidence."""

    ab: np.ndarray  # (h, w, 2) Lab units, any size with the photo's aspect ratio
    confidence: np.ndarray  # (h', w') in [0, 1]


def _resized(plane: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(h, w, C) array -> (1, C, height, width) tensor, bilinear."""
    t = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32)).permute(2, 0, 1)[None]
    return torch.nn.functional.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)


@dataclass
class Result:
    ab: np.ndarray  # (h, w, 2) float32
    losses: list[dict[str, float]]  # one entry per iteration
    seconds: float
    evaluations: int = 0  # VGG forward+backward passes (L-BFGS line searches may add a few)


class StyleTransfer:
    """One optimisation problem: targets, parametrised image and loss (see the module docstring)."""

    def __init__(
        self,
        vgg: VGGFeatures,
        lightness: np.ndarray,
        reference: np.ndarray,
        settings: ExemplarSettings,
        *,
        device: torch.device | str = "cpu",
        channels_last: bool = True,
        start: MatchedStart | None = None,
        resume: IterationState | None = None,
    ) -> None:
        self.vgg = vgg
        self.settings = settings
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        h, w = working_shape(lightness.shape[0], lightness.shape[1], settings.size)
        self.lightness = resize_plane(lightness, h, w)  # working-size L (numpy, for previews)
        self.L = torch.from_numpy(self.lightness.copy())[None, None].to(self.device)
        gray = labmod.lightness_to_gray_torch(self.L).expand(1, 3, h, w).contiguous()
        with torch.no_grad():  # targets: computed once
            self.content_targets = {k: v.detach() for k, v in self._features(gray, CONTENT_LAYERS).items()}
            ref = to_tensor(resize_rgb(reference, settings.size), self.device)
            self.style_targets = {k: gram(v).detach() for k, v in self._features(ref, STYLE_LAYERS).items()}
        generator = torch.Generator().manual_seed(settings.seed)
        self.shape = (h, w)
        if settings.init == "matched" and start is None:
            raise ValueError("init=matched needs the matched colours (the unet-bins weights)")
        self.start_ab: torch.Tensor | None = None  # (1, 2, h, w) matched colours, for the anchor
        self.confidence: torch.Tensor | None = None  # (1, 1, h, w)
        if settings.init == "matched" and start is not None:
            self.start_ab = _resized(start.ab, h, w).to(self.device)
            # Everywhere near the guided colours (they already blend match, palette and the net's guess),
            # twice as firmly where the match is sure.
            conf = _resized(start.confidence[..., None], h, w).clamp(0, 1)
            self.confidence = (0.5 + 0.5 * conf).to(self.device)
        # Edge-aware smoothness weights: ab may change freely across an L edge, hardly within a flat area.
        self.edge_x = torch.exp(-(self.L[..., :, 1:] - self.L[..., :, :-1]).abs() / EDGE_L)
        self.edge_y = torch.exp(-(self.L[..., 1:, :] - self.L[..., :-1, :]).abs() / EDGE_L)
        self.loss_scale: float | None = None  # content + style at the start (anchor/smoothness units)
        if settings.space == "ab":
            stride = max(1, settings.chroma_stride)
            grid = (max(1, round(h / stride)), max(1, round(w / stride)))
            init = torch.zeros(1, 2, *grid)
            if settings.init == "noise":
                init = torch.randn(1, 2, *grid, generator=generator) * AB_NOISE_STD
            elif self.start_ab is not None:
                init = torch.nn.functional.interpolate(self.start_ab.cpu(), size=grid, mode="area")
        else:
            init = gray.cpu().clone()
            if settings.init == "noise":
                init = torch.rand(1, 3, h, w, generator=generator)
            elif self.start_ab is not None:
                init = labmod.lab_to_rgb_torch(torch.cat([self.L, self.start_ab], dim=1)).cpu().clamp(0, 1)
        self.start_iteration = 1  # the first iteration to run (after a saved state's)
        self.resumed_sgd_lr: float | None = None
        saved = resume.arrays.get("x") if resume is not None else None
        same_run = resume is not None and resume.values.get("run") == self._run_fingerprint()
        if resume is not None and saved is not None and same_run and tuple(saved.shape) == tuple(init.shape):
            # the same photo, options and recipe (else a state of another version or options: start afresh)
            init = torch.from_numpy(np.ascontiguousarray(saved, dtype=np.float32))
            self.start_iteration = resume.step + 1
            self.loss_scale = resume.values.get("loss_scale")
            self.resumed_sgd_lr = resume.values.get("sgd_lr")
        self.x = init.to(self.device).contiguous().requires_grad_(True)  # LBFGS needs a plain layout

    def _features(self, rgb: torch.Tensor, taps: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.vgg(rgb.contiguous(memory_format=self.memory_format), taps)

    def image(self) -> torch.Tensor:
        """The current RGB image (1, 3, h, w) in [0, 1] for the VGG (differentiable in x)."""
        if self.settings.space == "ab":
            return labmod.lab_to_rgb_torch(torch.cat([self.L, self._full_ab()], dim=1))
        return self.x

    def _full_ab(self) -> torch.Tensor:
        if tuple(self.x.shape[2:]) == self.shape:
            return self.x
        return torch.nn.functional.interpolate(self.x, size=self.shape, mode="bilinear", align_corners=False)

    def ab(self) -> np.ndarray:
        """The current result's ab (h, w, 2) float32."""
        with torch.no_grad():
            if self.settings.space == "ab":
                return self._full_ab()[0].permute(1, 2, 0).float().cpu().numpy().copy()
            rgb = self.x[0].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy()
        return labmod.rgb_to_lab(rgb)[..., 1:].astype(np.float32)

    def _run_fingerprint(self) -> float:
        """What a saved state must come from to be gone on with: these options (but the number of
        iterations) and this version of the recipe (its state format)."""
        options = dataclasses.replace(self.settings, iterations=0)
        return float(zlib.crc32(f"{STATE_FORMAT}|{options!r}".encode()))

    def state(self, step: int) -> IterationState:
        """The state after iteration ``step``: x, and the scalars that make the rest run the same way."""
        values: dict[str, float] = {"run": self._run_fingerprint()}
        if self.loss_scale is not None:
            values["loss_scale"] = self.loss_scale
        if isinstance(getattr(self, "optimiser", None), torch.optim.SGD):
            values["sgd_lr"] = float(self.optimiser.param_groups[0]["lr"])
        return IterationState(step, {"x": self.x.detach().float().cpu().numpy().copy()}, values)

    def preview(self) -> np.ndarray:
        """The current colorization at the working size (RGB uint8), with the photo's own L."""
        return compose(self.lightness, self.ab())

    def losses(self, beta: float) -> dict[str, torch.Tensor]:
        """content, style and total = α·content + β·style (+ anchor + smoothness in ab mode) for the current
        x (one VGG pass). Anchor and smoothness are measured in units of the start's content + style loss,
        so their weights mean the same whatever the photo's size or the loss scale."""
        feats = self._features(self.image(), STYLE_LAYERS + CONTENT_LAYERS)
        content = content_loss(feats[CONTENT_LAYERS[0]], self.content_targets[CONTENT_LAYERS[0]])
        style = style_loss(feats, self.style_targets)
        total = self.settings.alpha * content + beta * style
        terms = {"content": content, "style": style}
        s = self.settings
        if s.space == "ab" and (s.smoothness > 0 or (s.anchor > 0 and self.start_ab is not None)):
            if self.loss_scale is None:
                self.loss_scale = max(float(total.detach()), 1e-6)
            ab = self._full_ab()
            if s.smoothness > 0:
                tv = (self.edge_x * _smooth_abs(ab[..., :, 1:] - ab[..., :, :-1])).mean() + (
                    self.edge_y * _smooth_abs(ab[..., 1:, :] - ab[..., :-1, :])
                ).mean()
                terms["smoothness"] = tv / AB_UNIT
                total = total + s.smoothness * self.loss_scale * terms["smoothness"]
            if s.anchor > 0 and self.start_ab is not None and self.confidence is not None:
                terms["anchor"] = (self.confidence * (ab - self.start_ab).pow(2)).mean() / AB_UNIT**2
                total = total + s.anchor * self.loss_scale * terms["anchor"]
        return {**terms, "total": total}

    def run(self, progress: ProgressCallback | None = None) -> Result:
        """Optimise for ``settings.iterations`` iterations, calling ``progress`` after every one."""
        s = self.settings
        start = time.perf_counter()
        history: list[dict[str, float]] = []
        current: dict[str, torch.Tensor] = {}
        cache: dict[str, Any] = {}
        beta = s.beta
        self.evaluations = 0

        def closure() -> torch.Tensor:
            # L-BFGS evaluates the start point of a step again although its line search has just evaluated
            # it (same bits): reuse that evaluation instead of paying a second VGG pass. The loss value is
            # recomputed with this iteration's β; the reused gradient is the previous iteration's (its style
            # part is 0.25% stronger under the decreasing schedule).
            if "x" in cache and torch.equal(cache["x"], self.x.detach()):
                self.x.grad = cache["grad"].clone()
                current.update(cache["terms"])
                current["total"] = cache["total"] + (beta - cache["beta"]) * cache["terms"]["style"]
                return current["total"]
            optimiser.zero_grad(set_to_none=True)
            current.update(self.losses(beta))
            current["total"].backward()
            self.evaluations += 1
            if s.optimizer == "lbfgs" and s.line_search:
                assert self.x.grad is not None  # backward() has just filled it
                cache.update(
                    x=self.x.detach().clone(),
                    grad=self.x.grad.detach().clone(),
                    terms={k: v.detach() for k, v in current.items() if k != "total"},
                    total=current["total"].detach(),
                    beta=beta,
                )
            return current["total"]

        optimiser: torch.optim.Optimizer
        if s.optimizer == "lbfgs":
            optimiser = torch.optim.LBFGS(
                [self.x],
                lr=1.0,
                max_iter=1,
                max_eval=1 + MAX_LINE_SEARCH,
                history_size=LBFGS_HISTORY,
                tolerance_grad=0.0,
                tolerance_change=0.0,
                line_search_fn="strong_wolfe" if s.line_search else None,
            )
        else:
            optimiser = torch.optim.SGD([self.x], lr=0.0, momentum=SGD_MOMENTUM)
        self.optimiser = optimiser
        pixel_unit = 1.0 if s.space == "ab" else 1.0 / 255.0
        if self.resumed_sgd_lr is not None:
            optimiser.param_groups[0]["lr"] = self.resumed_sgd_lr
        if progress is not None:  # the targets are ready: the iterations' own time starts here
            message = "optimising the colours"
            if self.start_iteration > 1:
                went_on = self.start_iteration - 1
                message = f"going on from iteration {went_on} (the job was interrupted there)"
            progress(Progress(step=0, total=s.iterations, message=message))
        for k in range(self.start_iteration, s.iterations + 1):
            beta = style_weight(s.beta, k, s.schedule)
            if isinstance(optimiser, torch.optim.LBFGS):  # s.optimizer == "lbfgs"
                optimiser.step(closure)
            else:
                closure()
                if k == 1 and self.resumed_sgd_lr is None:  # lr relative to the first gradient's mean |g|
                    assert self.x.grad is not None  # closure() ran backward()
                    scale = float(self.x.grad.abs().mean()) or 1.0
                    optimiser.param_groups[0]["lr"] = s.lr * pixel_unit / scale
                optimiser.step()
            losses = {name: float(v.detach()) for name, v in current.items()}
            losses["style_weight"] = beta
            history.append(losses)
            if not all(math.isfinite(v) for v in losses.values()):
                raise FloatingPointError(f"exemplar: loss became {losses} at iteration {k}")
            if progress is not None:
                try:
                    progress(
                        Progress(
                            step=k,
                            total=s.iterations,
                            message=f"iteration {k}/{s.iterations}",
                            losses=losses,
                            preview=self.preview,
                            state=lambda k=k: self.state(k),  # type: ignore[misc]
                        )
                    )
                except StopEarly:
                    break
        return Result(
            ab=self.ab(), losses=history, seconds=time.perf_counter() - start, evaluations=self.evaluations
        )


class ExemplarColorizer:
    """The ``exemplar`` method: a loaded VGG ready to colorize photos from a reference."""

    name = "exemplar"
    resumable = True

    def __init__(
        self,
        vgg: VGGFeatures,
        weights_name: str,
        device: str | torch.device = "cpu",
        guide: ReferenceGuidedColorizer | None = None,
    ) -> None:
        self.vgg = vgg
        self.guide = guide  # the reference-guided net that gives init=matched its start
        self.weights_name = weights_name
        self.device = torch.device(device)
        self.channels_last = True
        self.last_result: Result | None = None

    def predict_ab(
        self,
        lightness: np.ndarray,
        *,
        reference: np.ndarray | None,
        params: Mapping[str, Any],
        progress: ProgressCallback | None,
        resume: IterationState | None = None,
    ) -> np.ndarray:
        if reference is None:
            raise ValueError("the exemplar method needs a color reference image")
        reference = labmod.as_rgb(reference)
        settings = ExemplarSettings.from_params(params)
        if progress is not None:
            progress(
                Progress(
                    step=0,
                    total=settings.iterations,
                    message="preparing: measuring the photo's content and the reference's colours",
                )
            )
        start = None
        if settings.init == "matched":
            if self.guide is None:
                raise ValueError("init=matched needs the unet-bins weights; choose init=content")
            ab, confidence = self.guide.colorize_with_confidence(lightness, reference, {})
            start = MatchedStart(ab=ab, confidence=confidence)
        problem = StyleTransfer(
            self.vgg,
            lightness,
            reference,
            settings,
            device=self.device,
            channels_last=self.channels_last,
            start=start,
            resume=resume,
        )
        self.last_result = problem.run(progress)
        return self.last_result.ab


def build(
    weights: WeightFile, weights_dir: Path, device: str = "cpu", guide: ReferenceGuidedColorizer | None = None
) -> ExemplarColorizer:
    """The colorizer on the VGG of weight file ``weights`` (FileNotFoundError when it is missing);
    ``guide`` gives ``init=matched`` its start (without it only init=content/noise run)."""
    vgg = load_vgg(weights, weights_dir, last_layer="relu5_1", device=device)
    vgg = channels_last(vgg)
    return ExemplarColorizer(vgg, weights.name, device, guide)
