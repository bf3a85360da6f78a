"""The performance suite: ``python -m xai_core bench [--quick] [--threads N] --out DIR [--markdown BENCHMARKS.md]``.

Every figure is the median of several runs, measured in this process; ratios compare two
implementations measured side by side in the same run, their runs interleaved (never against
numbers from elsewhere).

* Models: the forward pass (prediction) and one input gradient per 32-frame clip.
* Methods: every registered method the default zoo model supports, with default parameters, per
  clip: the registered function on a preprocessed clip and a resolved target, and the whole
  ``xai_core.explain()`` call; the same on r3d-sides; ``lrp`` (default and epsilon composites)
  on every zoo model with LRP rules.  Peers where a library computes the same map: Captum
  (LayerGradCam, GuidedGradCam or GuidedBackprop x LayerGradCam, Saliency, InputXGradient,
  NoiseTunnel(Saliency), IntegratedGradients) and pytorch-grad-cam (GradCAMPlusPlus).  Each
  peer's map is compared with ours first; a peer that disagrees by more than ``AGREEMENT`` is
  reported with its difference and not timed (it computes something else).
* Temporal (issue 5): occlusion against Captum's Occlusion, frame masking against Captum's
  FeatureAblation, TSR against the reference loop (one base attribution per mask), on the default
  zoo model and r3d-sides; the long methods are measured here, not in the methods table.
* Video: sampling a clip (ours against OpenCV decoding every frame) and writing H.264.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

import xai_core
from xai_core.api import prepare
from xai_core.explanation import Target
from xai_core.methods.machinery.planning import LONG_METHODS
from xai_core.methods.machinery.registry import get_method, method_specs
from xai_core.methods.machinery.scoring import TargetScore
from xai_core.models.modes import eval_mode
from xai_core.video import load_video, sample_clips, write_video

DEFAULT_MODEL = "cnn_transformer-sides"
ALL_METHODS_MODELS = (DEFAULT_MODEL, "r3d-sides")  # every method they support, with peers
LRP_MODELS = ("r3d-sides", "cnn_lstm-sides", "cnn_lstm-pause")  # lrp, default and epsilon composites
LRP_COMPOSITES = (None, "epsilon")  # None: the method's default composite

# Issue 4's speed target, judged on the whole explain() call for the default zoo model.
TARGET_SECONDS = 1.0
TARGET_EXEMPT = ("integrated_gradients", "smoothgrad")
TARGET_TEXT = (
    "every spatial method except integrated_gradients and smoothgrad under 1 s per clip on this CPU "
    "for the default zoo model"
)
# Issue 6: Farneback flows, the decomposition and one gradient pass through the rebuild under 1 s.
MOTION_TARGET_METHODS = ("flow_gradient",)
AGREEMENT = 1e-3  # a peer is timed only when max |peer - ours| / max |ours| is at most this

# Issue 5: frame masking, occlusion and TSR against the slow way, side by side.
TEMPORAL_MODELS = (DEFAULT_MODEL, "r3d-sides")
TEMPORAL_CASES = {  # method: (parameters, peer, speed-up target on the default model)
    "occlusion": ({"window": (1, 10, 10), "stride": (1, 10, 10)}, "Captum Occlusion (perturbations_per_eval=1)", 30),
    "frame_mask": ({}, "Captum FeatureAblation (a feature per frame)", 10),
    "tsr": ({"base": "saliency", "block": 10, "alpha_quantile": 0.55}, "reference loop (one saliency per mask)", 5),
}
TSR_SECONDS = 60  # issue 5: TSR under a minute on this CPU for the default model
TEMPORAL_REPEATS = 3  # the slow peers take minutes a run

NO_PEER = {
    "lrp": "no independent peer: the conv layers' rules are zennit's (composite and canonizers), applied by "
    "ours; the LSTM rules are hand-written and checked against slow references in tests/test_lrp.py",
    "attention_cls": "no peer: it reads the model's own attention weights (no library method does this for "
    "a frame Transformer)",
    "attention_rollout": "no peer: rollout of the model's own attention weights, checked against a slow loop "
    "in tests/test_attention.py",
    "attention_pool": "no peer: the model's own attention-pooling weights",
    "flow_gradient": "no peer: no library differentiates through an optical-flow decomposition; checked in "
    "tests/test_flow.py against the clip's own gradient and finite differences (float64), and against Moving "
    "Shapes' true angles",
    "smoothflow": "no peer: SmoothGrad in the flow decomposition (see flow_gradient)",
    "trajectories": "no peer: flows from OpenCV, the base map from the registered method; tracks and window sums "
    "checked against slow loops in tests/test_trajectories.py",
}


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> dict:
    """Run ``fn`` warmup + repeats times; median, min and max of the timed runs (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return _summary(times)


def side_by_side(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Time already warmed-up functions in turns (a, b, c, a, b, c, ...), so that a change in the
    machine's load hits each alike; per function the median, min and max (seconds)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: _summary(t) for name, t in times.items()}


def _summary(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": len(times)}


def relative_difference(ours: np.ndarray, peer: np.ndarray | torch.Tensor) -> float:
    """max |peer - ours| / max |ours| over the [T,H,W] maps."""
    peer = peer.detach().cpu().numpy() if isinstance(peer, torch.Tensor) else np.asarray(peer)
    if peer.shape != ours.shape:
        return float("inf")
    return float(np.abs(peer - ours).max() / (np.abs(ours).max() + 1e-12))


# ----------------------------------------------------------------------------------------- peers
def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone().requires_grad_(True)


def _channel_sum(attribution: torch.Tensor) -> torch.Tensor:
    """Captum's [1,T,C,H,W] -> [T,H,W]."""
    return attribution.detach()[0].sum(1)


def captum_gradcam(model, x: torch.Tensor, target_index: int | None) -> torch.Tensor:
    """Captum's LayerGradCam on the model's Grad-CAM layer, upsampled like ours -> [T,H,W]."""
    from captum.attr import LayerGradCam

    from xai_core.methods.cam import upsample_cam

    layer = model.layer()
    if model.layout == "BCTHW":
        attr = LayerGradCam(lambda v: model.net(v), layer).attribute(x.transpose(1, 2), target=target_index)
        cam = attr.detach()[0, 0]
    else:
        cam = LayerGradCam(model, layer).attribute(x, target=target_index).detach()[:, 0]
    return upsample_cam(cam, x.shape[1], tuple(x.shape[3:]))


def captum_guided_gradcam(model, x: torch.Tensor, target_index: int) -> torch.Tensor:
    """3D layer: Captum's GuidedGradCam (it upsamples the layer's map to [T,H,W] itself).  Per-frame
    layer: Captum's GuidedGradCam cannot upsample a [T,1,h,w] map to a 5-D clip, so its two parts,
    GuidedBackprop times the rectified LayerGradCam upsampled like ours -> [T,H,W]."""
    from captum.attr import GuidedBackprop, GuidedGradCam, LayerGradCam

    from xai_core.methods.cam import upsample_cam

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        if model.layout == "BCTHW":
            attr = GuidedGradCam(model.net, model.layer()).attribute(
                _leaf(x.transpose(1, 2)), target=target_index, interpolate_mode="trilinear"
            )
            return attr.detach()[0].sum(0)  # [C,T,H,W] -> [T,H,W]
        guided = _channel_sum(GuidedBackprop(model).attribute(_leaf(x), target=target_index))
    cam = LayerGradCam(model, model.layer()).attribute(x, target=target_index).detach()[:, 0]
    return guided * upsample_cam(cam.clamp(min=0), x.shape[1], tuple(x.shape[3:]))


def grad_cam_plus_plus(model, x: torch.Tensor, target_index: int) -> torch.Tensor:
    """pytorch-grad-cam's GradCAMPlusPlus weights (signed map at the layer, before its ReLU, scaling
    and OpenCV resize) on its own activations and gradients, upsampled like ours -> [T,H,W]."""
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from xai_core.methods.cam import upsample_cam

    net, inputs = (model.net, x.transpose(1, 2)) if model.layout == "BCTHW" else (model, x)
    with eval_mode(model):  # GradCAMPlusPlus puts the network in eval mode; the model's own modes come back
        cam = GradCAMPlusPlus(net, target_layers=[model.layer()])
        try:
            outputs = cam.activations_and_grads(inputs)
            sum(ClassifierOutputTarget(target_index)(out) for out in outputs).backward()
            activation = cam.activations_and_grads.activations[0].numpy()
            gradient = cam.activations_and_grads.gradients[0].numpy()
            low = cam.get_cam_image(inputs, model.layer(), None, activation, gradient)
        finally:
            cam.activations_and_grads.release()
            model.zero_grad(set_to_none=True)
    low = torch.from_numpy(low[0] if model.layout == "BCTHW" else low)
    return upsample_cam(low, x.shape[1], tuple(x.shape[3:]))


def captum_saliency(model, x: torch.Tensor, target_index: int) -> torch.Tensor:
    from captum.attr import Saliency

    return _channel_sum(Saliency(model).attribute(_leaf(x), target=target_index, abs=False))


def captum_input_x_gradient(model, x: torch.Tensor, target_index: int) -> torch.Tensor:
    from captum.attr import InputXGradient

    return _channel_sum(InputXGradient(model).attribute(_leaf(x), target=target_index))


def captum_smoothgrad(model, x: torch.Tensor, target_index: int, samples: int, sigma: float, seed: int) -> torch.Tensor:
    """NoiseTunnel(Saliency) with the same samples, noise, noise seed and clips per pass as ours."""
    from captum.attr import NoiseTunnel, Saliency

    from xai_core.methods.machinery.smoothing import clips_per_pass

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        attr = NoiseTunnel(Saliency(model)).attribute(
            _leaf(x),
            nt_type="smoothgrad",
            nt_samples=samples,
            nt_samples_batch_size=clips_per_pass(x.device),
            stdevs=float(sigma * (x.max() - x.min())),
            target=target_index,
            abs=False,
        )
    return _channel_sum(attr)


def captum_integrated_gradients(
    model, x: torch.Tensor, target_index: int, steps: int, baseline: str, blur_sigma: float
) -> torch.Tensor:
    """IntegratedGradients with the same steps, baseline and internal batch as ours (without the
    convergence delta and the two scores ours also records)."""
    from captum.attr import IntegratedGradients

    from xai_core.methods.machinery.perturbation import baseline_clip
    from xai_core.methods.machinery.smoothing import clips_per_pass

    attr = IntegratedGradients(model).attribute(
        _leaf(x),
        baselines=baseline_clip(model, x, baseline, blur_sigma),
        target=target_index,
        n_steps=steps,
        internal_batch_size=clips_per_pass(x.device),
    )
    return _channel_sum(attr)


class Peer(NamedTuple):
    name: str
    fn: Callable  # (model, x, target_index, **params) -> [T,H,W]
    params: tuple[str, ...] = ()  # the method's parameters it takes


def peer_for(method: str, model) -> Peer | None:
    """The library computing the same map as ``method`` on ``model`` (None when there is none)."""
    if method == "gradcam":
        return Peer("Captum LayerGradCam", lambda m, x, i: captum_gradcam(m, x, i))
    if method == "gradcam_pp":
        return Peer("pytorch-grad-cam GradCAMPlusPlus", grad_cam_plus_plus)
    if method == "guided_gradcam":
        name = "Captum GuidedGradCam" if model.layout == "BCTHW" else "Captum GuidedBackprop x LayerGradCam"
        return Peer(name, captum_guided_gradcam)
    if method == "saliency":
        return Peer("Captum Saliency", captum_saliency)
    if method == "input_x_gradient":
        return Peer("Captum InputXGradient", captum_input_x_gradient)
    if method == "smoothgrad":
        return Peer("Captum NoiseTunnel(Saliency)", captum_smoothgrad, ("samples", "sigma", "seed"))
    if method == "integrated_gradients":
        return Peer("Captum IntegratedGradients", captum_integrated_gradients, ("steps", "baseline", "blur_sigma"))
    return None


# ---------------------------------------------------------------------------------------- models
class Subject(NamedTuple):
    """A model under measurement, its clip, preprocessed input and resolved (predicted) target."""

    name: str
    model: object
    clip: object
    x: torch.Tensor
    target: Target


def subject(name: str, model=None) -> Subject:
    model = model if model is not None else xai_core.load_model(name, device="cpu")
    clip = xai_core.load_video("shapes:1", model=model)
    prepared = prepare(model, clip)
    return Subject(name, model, clip, prepared.x, prepared.target)


def bench_model(s: Subject, repeats: int) -> dict:
    """Forward pass (prediction) and one input gradient of the target score on one clip."""
    model, x = s.model, s.x

    def forward():
        with torch.inference_mode():
            model(x)

    def gradient():
        xx = _leaf(x)
        torch.autograd.grad(s.target.score(model(xx)).sum(), xx)

    return {
        "model": s.name,
        "arch": model.info.arch,
        "input": list(x.shape),
        "predict": median_seconds(forward, repeats),
        "input_gradient": median_seconds(gradient, repeats),
    }


def method_cases(model, all_methods: bool) -> list[tuple[str, dict]]:
    """(method, user parameters) to measure on ``model``: every method it supports with default
    parameters (or only ``lrp``), and ``lrp`` with each of LRP_COMPOSITES."""
    supported = [spec.name for spec in method_specs(model) if spec.name not in LONG_METHODS]
    cases = [(name, {}) for name in supported if all_methods or name == "lrp"]
    if "lrp" in supported:
        default = get_method("lrp").resolve_params({})["composite"]
        cases += [("lrp", {"composite": c}) for c in LRP_COMPOSITES if c is not None and c != default]
    return cases


def bench_method(s: Subject, method: str, user_params: dict, repeats: int, whole_call: bool) -> dict:
    """One method on one model: the registered function (and the whole explain() call), its peer's
    agreement and, when they agree, the peer's time, all timed side by side."""
    spec = get_method(method)
    params = spec.resolve_params(user_params)
    model, x, target = s.model, s.x, s.target

    def ours():
        return spec.fn(model, x, target, **params)

    row = {
        "model": s.name,
        "method": method,
        "family": spec.family,
        "params": params,
        "target": target.describe(),
    }
    expl = ours()  # warm-up, and the map the peer is checked against
    timed = {"ours": ours}
    if whole_call:
        timed["explain_call"] = lambda: xai_core.explain(model, s.clip, method, **user_params)
    peer = peer_for(method, model) if target.kind == "class" and expl.spatial is not None else None
    if peer is not None:
        peer_params = {k: params[k] for k in peer.params}

        def run_peer():
            return peer.fn(model, x, target.index, **peer_params)

        difference = relative_difference(expl.spatial, run_peer())  # also the peer's warm-up
        row["peer"] = {"name": peer.name, "max_relative_difference": difference, "timed": difference <= AGREEMENT}
        if difference <= AGREEMENT:
            timed["peer"] = run_peer
    elif method in NO_PEER:
        row["no_peer"] = NO_PEER[method]
    times = side_by_side(timed, repeats)
    row["ours"] = times["ours"]
    if whole_call:
        row["explain_call"] = times["explain_call"]
    if "peer" in times:
        row["peer"]["seconds"] = times["peer"]
        row["peer"]["ratio"] = times["peer"]["median"] / times["ours"]["median"]
    return row


def target_status(row: dict) -> str:
    """Issue 4's target for a row of the default model: meets / misses / exempt / n/a (temporal);
    issue 6's for ``flow_gradient`` (the decomposition and one gradient pass under 1 s)."""
    if row["method"] in MOTION_TARGET_METHODS:
        verdict = "meets" if row["explain_call"]["median"] < TARGET_SECONDS else "misses"
        return f"{verdict} (issue 6)"
    if row["family"] != "spatial":
        return f"n/a ({row['family']})"
    if row["method"] in TARGET_EXEMPT:
        return "exempt"
    return "meets" if row["explain_call"]["median"] < TARGET_SECONDS else "misses"


def bench_methods(
    subjects: dict[str, Subject],
    default_model: str,
    all_methods: tuple[str, ...],
    lrp_models: list[str],
    repeats: int,
) -> list[dict]:
    rows = []
    for name, s in subjects.items():
        if name not in all_methods and name not in lrp_models:
            continue
        for method, params in method_cases(s.model, all_methods=name in all_methods):
            row = bench_method(s, method, params, repeats, whole_call=name == default_model)
            if name == default_model:
                row["speed_target"] = target_status(row)
            rows.append(row)
    return rows


# -------------------------------------------------------------------------------------- temporal
def captum_occlusion(model, x: torch.Tensor, target: Target, fill: torch.Tensor, window, stride) -> torch.Tensor:
    """Captum's Occlusion on the same windows (all colour channels together) -> [T,H,W]."""
    from captum.attr import Occlusion

    forward = TargetScore(model, target)
    shape, strides = (window[0], 3, window[1], window[2]), (stride[0], 3, stride[1], stride[2])
    with torch.no_grad():
        out = Occlusion(forward).attribute(
            x, sliding_window_shapes=shape, strides=strides, baselines=fill, target=0, perturbations_per_eval=1
        )
    return out[0, :, 0]


def captum_frame_ablation(
    model, x: torch.Tensor, target: Target, fill: torch.Tensor, per_eval: int = 1
) -> torch.Tensor:
    """Captum's FeatureAblation with one feature per frame (``per_eval`` perturbed clips a pass) -> [T]."""
    from captum.attr import FeatureAblation

    forward = TargetScore(model, target)
    frame_ids = torch.arange(x.shape[1]).view(1, -1, 1, 1, 1).expand_as(x)
    with torch.no_grad():
        out = FeatureAblation(forward).attribute(
            x, feature_mask=frame_ids, baselines=fill, target=0, perturbations_per_eval=per_eval
        )
    return out[0, :, 0, 0, 0]


def bench_temporal_case(s: Subject, method: str, repeats: int) -> dict:
    """One temporal method on one model against its slow peer, timed side by side; the difference
    is the largest |ours - peer| over the range of the peer's values."""
    from xai_core.methods.machinery.perturbation import fill_clip

    user_params, peer_name, target_ratio = TEMPORAL_CASES[method]
    spec = get_method(method)
    params = spec.resolve_params(user_params)
    model, x, target = s.model, s.x, s.target
    fill = fill_clip(model, x, params.get("baseline", "zero"))

    def ours():
        return spec.fn(model, x, target, **params)

    if method == "occlusion":
        peer = lambda: captum_occlusion(model, x, target, fill, params["window"], params["stride"])  # noqa: E731
    elif method == "frame_mask":
        peer = lambda: captum_frame_ablation(model, x, target, fill)  # noqa: E731
    else:
        peer = lambda: spec.fn(model, x, target, **{**params, "engine": "reference"})  # noqa: E731
    mine, theirs = ours(), peer()  # warm-up, and the values compared
    ours_values = mine.temporal if method == "frame_mask" else mine.spatial
    peer_values = theirs.spatial if method == "tsr" else np.asarray(theirs, dtype=np.float64)
    scale = float(np.ptp(peer_values)) or 1.0
    difference = float(np.abs(np.asarray(ours_values, dtype=np.float64) - peer_values).max()) / scale
    times = side_by_side({"ours": ours, "peer": peer}, repeats)
    return {
        "model": s.name,
        "method": method,
        "params": params,
        "evaluations": int(mine.meta.get("evaluations", 0)),
        "engine": mine.meta.get("strategy") or mine.meta.get("engine"),
        "peer": peer_name,
        "ours": times["ours"],
        "peer_seconds": times["peer"],
        "ratio": times["peer"]["median"] / times["ours"]["median"],
        "max_difference_over_range": difference,
        "target_ratio": target_ratio if s.name == DEFAULT_MODEL else None,
    }


def bench_temporal(subjects: dict[str, Subject], repeats: int) -> list[dict]:
    return [
        bench_temporal_case(subjects[name], method, repeats)
        for name in TEMPORAL_MODELS
        if name in subjects
        for method in TEMPORAL_CASES
    ]


def temporal_markdown(rows: list[dict], runs: int) -> list[str]:
    lines = [
        "## Temporal saliency: frame masking, occlusion and TSR against the slow way",
        "",
        "Each pair measured side by side in one run on a 32-frame 112x112 clip (Moving Shapes `shapes:1`), CPU,",
        f"{'medians of ' + str(runs) + ' runs' if runs > 1 else 'one timed run'} after a warm-up; ratio = peer / ours.",
        "The difference is max |ours - peer| over the range of the peer's values. Issue 5's bound, 1e-5, is checked",
        "in float64 by the tests; in float32 the order of summation in a batch leaves a few 1e-5: Captum's own",
        "FeatureAblation with perturbations_per_eval=32 differs from itself with 1 by as much",
        "(`python benchmarks/float32_order.py`, benchmarks/results/float32_order.md).",
        f"Targets on the default model (issue 5): occlusion >= 30x, frame_mask >= 10x, tsr >= 5x and under "
        f"{TSR_SECONDS} s.",
        "",
        "| model | method | parameters | evaluations | ours | peer | peer's time | ratio | difference | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = "—"
        if r["target_ratio"] is not None:
            met = r["ratio"] >= r["target_ratio"]
            if r["method"] == "tsr":
                met = met and r["ours"]["median"] < TSR_SECONDS
            target = ("meets" if met else "misses") + f" (>= {r['target_ratio']}x)"
        params = _params({k: v for k, v in r["params"].items() if k in TEMPORAL_CASES[r["method"]][0]})
        lines.append(
            f"| {r['model']} | `{r['method']}` | {params} | {r['evaluations']:,} | {_ms(r['ours'])} ({r['engine']}) | "
            f"{r['peer']} | {_ms(r['peer_seconds'])} | {r['ratio']:.1f}x | {r['max_difference_over_range']:.1e} | "
            f"{target} |"
        )
    lines += [
        "",
        "The engine: `split` scores a perturbed clip from cached per-frame work (the small CNN recomputed only",
        "where its input changed), `whole` runs every perturbed clip through the model (3D CNNs have no per-frame",
        "structure to re-use); `GradientChange` re-uses per-frame Jacobians for saliency-based TSR,",
        "`ReferenceChange` is the loop itself.",
        "",
    ]
    return lines


# ----------------------------------------------------------------------------------------- video
def bench_video(repeats: int) -> dict:
    import cv2

    results = {}
    for name, path in sample_clips().items():
        ours = median_seconds(lambda p=path: load_video(p, frames=32, size=(112, 112)), repeats)

        def opencv_all_frames(p=path):
            cap = cv2.VideoCapture(str(p))
            frames = []
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(cv2.resize(frame, (112, 112), interpolation=cv2.INTER_AREA))
            cap.release()
            return frames

        peer = median_seconds(opencv_all_frames, repeats)
        results[name] = {
            "load_video_32x112": ours,
            "opencv_decode_all_resize": peer,
            "ratio": peer["median"] / ours["median"],
        }
    frames = xai_core.load_video("shapes:1").frames
    out = Path(__import__("tempfile").mkdtemp()) / "clip.mp4"
    results["write_h264_32x112"] = median_seconds(lambda: write_video(frames, out), repeats)
    return results


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.is_available(),
        "captum": _version("captum"),
        "grad_cam": _version("grad-cam"),
        "zennit": _version("zennit"),
    }


def run(
    quick: bool = False,
    default_model: str = DEFAULT_MODEL,
    all_methods: tuple[str, ...] = ALL_METHODS_MODELS,
    lrp_models: tuple[str, ...] = LRP_MODELS,
    video: bool = True,
    temporal: bool = True,
) -> dict:
    """Measure everything on the CPU.  quick: 3 runs per figure (1 per method, after its warm-up)
    instead of 7.  Zoo models that are missing are skipped (and listed)."""
    repeats = 3 if quick else 7
    method_repeats = 1 if quick else repeats
    zoo = set(xai_core.zoo_names())
    wanted = [default_model, *all_methods, *lrp_models, *(TEMPORAL_MODELS if temporal else ())]
    names = [n for n in dict.fromkeys(wanted) if n in zoo]
    subjects = {name: subject(name) for name in names}
    measured_lrp = [n for n in lrp_models if n in subjects and "lrp" in xai_core.list_methods(subjects[n].model)]
    rows = bench_methods(subjects, default_model, all_methods, measured_lrp, method_repeats)
    default_rows = [r for r in rows if r["model"] == default_model]
    judged = [r for r in default_rows if r["speed_target"] in ("meets", "misses")]
    return {
        "machine": machine(),
        "quick": quick,
        "models": [bench_model(s, repeats) for s in subjects.values()],
        "methods": {
            "default_model": default_model,
            "supported_by_default_model": (
                xai_core.list_methods(subjects[default_model].model) if default_model in subjects else []
            ),
            "runs_per_figure": method_repeats,
            "speed_target": {
                "text": TARGET_TEXT,
                "seconds": TARGET_SECONDS,
                "exempt": list(TARGET_EXEMPT),
                "judged_on": "whole explain() call, median",
                "met": bool(judged) and all(r["speed_target"] == "meets" for r in judged),
                "misses": [r["method"] for r in judged if r["speed_target"] == "misses"],
            },
            "lrp_models": measured_lrp,
            "lrp_models_missing": [n for n in lrp_models if n not in subjects],
            "rows": rows,
        },
        "temporal": bench_temporal(subjects, 1 if quick else TEMPORAL_REPEATS) if temporal else [],
        "temporal_runs": 1 if quick else TEMPORAL_REPEATS,
        "video": bench_video(repeats) if video else {},
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }


# -------------------------------------------------------------------------------------- markdown
def _ms(entry: dict) -> str:
    seconds = entry["median"]
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items() if v is not None) or "—"


def _method_table(rows: list[dict], default: bool) -> list[str]:
    head = "| method | parameters | ours |" + (" whole explain() |" if default else "")
    head += " peer | peer's time | ratio | max rel. difference |" + (" < 1 s target |" if default else "")
    lines = [head, "|" + "---|" * head.count(" |")]
    for r in rows:
        cells = [f"`{r['method']}`", _params(r["params"]), _ms(r["ours"])]
        if default:
            cells.append(_ms(r["explain_call"]))
        peer = r.get("peer")
        if peer is None:
            cells += ["—", "—", "—", "—"]
        elif peer["timed"]:
            difference = f"{peer['max_relative_difference']:.1e}"
            cells += [peer["name"], _ms(peer["seconds"]), f"{peer['ratio']:.2f}x", difference]
        else:
            cells += [peer["name"], "not timed: maps differ", "—", f"{peer['max_relative_difference']:.1e}"]
        if default:
            cells.append(r["speed_target"])
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def methods_markdown(results: dict) -> list[str]:
    m = results["methods"]
    default = m["default_model"]
    rows = m["rows"]
    target = m["speed_target"]
    runs = m["runs_per_figure"]
    lines = [
        "## Explanation methods per 32-frame clip",
        "",
        "Ours is the registered method on a preprocessed clip (Moving Shapes `shapes:1`) and the predicted class,",
        "with default parameters (`lrp` also with the `epsilon` composite): everything the method does (forward,",
        "backward, maps at 32x112x112, frame curve).",
        "For the default model, the whole `xai_core.explain(model, clip, method)` call is timed as well (it adds",
        "preprocessing, the clip's hash and the prediction pass that picks the target). A peer is a library",
        "computing the same map on the same model, clip, target and parameters; its map is compared with ours",
        f"first (max |peer - ours| / max |ours|) and timed only if that is at most {AGREEMENT:g}. "
        + (f"Medians of {runs} runs" if runs > 1 else "One timed run (quick mode)")
        + " after a warm-up, ours, the whole call and the peer in turns; ratio = peer / ours (> 1: ours is faster).",
        "",
        f"**Target (issue 4): {target['text']}** (`{default}`; judged on the whole `explain()` call): "
        + (
            "met."
            if target["met"]
            else "missed by " + (", ".join(f"`{n}`" for n in target["misses"]) or "no measured method") + "."
        ),
        "",
    ]
    motion = [r for r in rows if r["model"] == default and r["method"] in MOTION_TARGET_METHODS]
    if motion:
        lines += [
            "**Target (issue 6): Farneback flows, the decomposition and one gradient pass through the rebuild "
            f"(`flow_gradient`) under {TARGET_SECONDS:g} s** (`{default}`; the whole `explain()` call): "
            + ", ".join(f"{_ms(r['explain_call'])}, {r['speed_target'].split()[0]}" for r in motion)
            + ".",
            "",
        ]
    models = list(dict.fromkeys(r["model"] for r in rows))
    for name in models:
        mine = [r for r in rows if r["model"] == name]
        title = f"### {name}" + (" (default model)" if name == default else "")
        lines += [title, "", *_method_table(mine, name == default), ""]
    notes = {}
    for r in rows:
        if "no_peer" in r:
            notes.setdefault(r["method"], r["no_peer"])
    methods = {r["method"] for r in rows}
    if "integrated_gradients" in methods:
        notes["integrated_gradients"] = (
            "ours also returns the convergence delta and the scores of the clip and the baseline (a few forward "
            "passes more than the peer)"
        )
    if any(r["method"] == "gradcam_pp" and not r.get("peer", {}).get("timed", True) for r in rows):
        notes["gradcam_pp"] = (
            "pytorch-grad-cam adds 1e-6 to the denominator of the weights alpha = g^2 / (2 g^2 + sum(A) g^3); where "
            "the layer's gradients g are not large next to 1e-3 that constant decides alpha, so its map is not "
            "the formula's (the difference column) and its time is not compared"
        )
    lines += [f"* `{name}`: {why}." for name, why in notes.items()]
    measured = ", ".join(f"`{n}`" for n in m["lrp_models"]) or "none"
    missing = ", ".join(f"`{n}`" for n in m["lrp_models_missing"])
    lines += [
        "",
        f"LRP (not offered for Transformers) measured on: {measured}"
        + (f"; no checkpoint for {missing}" if missing else "")
        + ".",
        "",
    ]
    return lines


def to_markdown(results: dict) -> str:
    m = results["machine"]
    libraries = ", ".join(f"{k.replace('_', '-')} {m[k]}" for k in ("captum", "grad_cam", "zennit") if m.get(k))
    lines = [
        "# Benchmarks",
        "",
        "Regenerate with `python -m xai_core bench --out benchmarks/results --markdown BENCHMARKS.md`.",
        "Medians of several runs in one process; each ratio compares two implementations measured side by side",
        "in the same run (ratio > 1: ours is faster).",
        "",
        f"Measured {results['when']} on {m['cpu']}, {m['torch_threads']} torch threads, torch {m['torch']}, "
        f"Python {m['python']}, CUDA {'yes' if m['cuda'] else 'no'}; {libraries}"
        + (" (quick mode: fewer runs)" if results["quick"] else "")
        + ".",
        "",
        "## Models: prediction and one input gradient per 32-frame clip",
        "",
        "| model | input | predict (forward) | input gradient (forward + backward) |",
        "|---|---|---|---|",
    ]
    for r in results["models"]:
        shape = "x".join(str(v) for v in r["input"])
        lines.append(f"| {r['model']} | {shape} | {_ms(r['predict'])} | {_ms(r['input_gradient'])} |")
    lines += ["", *methods_markdown(results)]
    kept = results.get("kept", {})
    if results.get("temporal"):
        section = temporal_markdown(results["temporal"], results["temporal_runs"])
        lines += _with_date(section, kept.get("temporal"))
    if results["video"]:
        lines += _with_date(video_markdown(results["video"]), kept.get("video"))
    return "\n".join(lines)


# The quality measurements: results in the output folder, each made by its own command.
QUALITY = (
    (
        "localization",
        "Localization: Grad-CAM's peak on the moving shape",
        "python benchmarks/localization.py --clips 60",
    ),
    (
        "localization_methods",
        "Localization of every spatial method",
        "python benchmarks/localization.py --models cnn_transformer-sides cnn_transformer-sides-gated r3d-sides "
        "--methods all --clips 10 --name localization_methods",
    ),
    ("motion", "Motion explanations against the ground truth (issue 6)", "python benchmarks/motion.py"),
    (
        "motion_share",
        "Motion against appearance: per-frame shares and motion reliance",
        "python benchmarks/motion_share.py",
    ),
    ("float32_order", "float32 summation order", "python benchmarks/float32_order.py"),
    ("modes", "Users' models with batch norm and dropout: modes, repeatability, Captum", "python benchmarks/modes.py"),
)


def quality_markdown(folder: Path) -> list[str]:
    """The quality measurements' tables found in ``folder`` (NAME.md), each under its command."""
    found = [(stem, title, command) for stem, title, command in QUALITY if (folder / f"{stem}.md").is_file()]
    if not found:
        return []
    lines = [
        "",
        "## Quality measurements",
        "",
        "Not timings: how well the explanations find the ground truth of Moving Shapes, and whether they",
        "agree with their peers. Each table is copied from its own command's results in this folder when",
        "the suite runs; rerun the command to renew it.",
    ]
    for stem, title, command in found:
        text = (folder / f"{stem}.md").read_text().strip()
        lines += ["", f"### {title}", "", f"`{command}` (benchmarks/results/{stem}.md)", "", text]
    return lines


def _with_date(section: list[str], when: str | None) -> list[str]:
    """A section's lines, with the date it was measured under its title when it was kept from an
    earlier run."""
    if when is None:
        return section
    return [*section[:2], f"Measured {when} (kept from that run with `--keep`).", "", *section[2:]]


def video_markdown(video: dict) -> list[str]:
    lines = [
        "## Video: sampling a clip to the model's input",
        "",
        "`load_video(path, frames=32, size=(112, 112))` decodes once, streaming, and keeps only the sampled frames.",
        "The peer decodes every frame with OpenCV's `VideoCapture` and resizes it (what a naive loader does).",
        "",
        "| clip | load_video (32 frames) | OpenCV, every frame | ratio |",
        "|---|---|---|---|",
    ]
    for name, r in video.items():
        if name.startswith("write_"):
            continue
        lines.append(
            f"| {name} | {_ms(r['load_video_32x112'])} | {_ms(r['opencv_decode_all_resize'])} | {r['ratio']:.2f}x |"
        )
    lines += ["", f"Writing a 32-frame 112x112 H.264 mp4: {_ms(video['write_h264_32x112'])}.", ""]
    return lines


KEEPABLE = ("temporal", "video")  # the slow sections: re-used from an earlier run with --keep


def kept_sections(out: str, keep: tuple[str, ...]) -> dict:
    """The ``keep`` sections of OUT/bench.json, each with the date it was measured (``kept``)."""
    unknown = [name for name in keep if name not in KEEPABLE]
    if unknown:
        raise ValueError(f"--keep takes {', '.join(KEEPABLE)}, not {', '.join(unknown)}")
    path = Path(out) / "bench.json"
    if not path.exists():
        raise FileNotFoundError(f"--keep re-uses {path}, which does not exist: run the whole suite once")
    earlier = json.loads(path.read_text())
    missing = [name for name in keep if not earlier.get(name)]
    if missing:
        raise ValueError(f"{path} has no {', '.join(missing)} results to keep")
    taken = {name: earlier[name] for name in keep}
    if "temporal" in keep:
        taken["temporal_runs"] = earlier["temporal_runs"]
    measured = f"{earlier['when']} on {earlier['machine']['cpu']}, {earlier['machine']['torch_threads']} torch threads"
    taken["kept"] = {name: earlier.get("kept", {}).get(name, measured) for name in keep}
    return taken


def main(
    out: str,
    quick: bool = False,
    markdown: str | None = None,
    threads: int | None = None,
    keep: tuple[str, ...] = (),
) -> dict:
    """Run the suite (at ``threads`` torch threads, restored afterwards) and write DIR/bench.json,
    DIR/BENCHMARKS.md and, if given, ``markdown``.  ``keep``: sections of KEEPABLE taken from the
    existing DIR/bench.json instead of measured again (their dates are kept and reported)."""
    if threads is not None and threads < 1:
        raise ValueError(f"--threads takes a positive number, got {threads}")
    taken = kept_sections(out, tuple(keep)) if keep else {}
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        results = run(quick=quick, temporal="temporal" not in keep, video="video" not in keep)
    finally:
        torch.set_num_threads(previous)
    results.update(taken)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    text = "\n".join([to_markdown(results), *quality_markdown(folder)])
    (folder / "BENCHMARKS.md").write_text(text)
    if markdown:
        Path(markdown).write_text(text)
    return results
