"""The performance suite: ``python -m xai_core bench [--quick] [--threads N] --out DIR [--markdown BENCHMARKS.md]``.

Every figure is the median of several runs, measured in this process; ratios compare two
implementations measured side by side in the same run, their runs interleaved (never against
numbers from elsewhere).

* Models (``subjects``): the forward pass (prediction) and one input gradient per 32-frame clip.
* Methods (``methods``): every registered method the default zoo model supports, with default
  parameters, per clip: the registered function on a preprocessed clip and a resolved target, and
  the whole ``xai_core.explain()`` call; the same on r3d-sides; ``lrp`` (default and epsilon
  composites) on every zoo model with LRP rules.  Peers (``peers``) where a library computes the
  same map: Captum (LayerGradCam, GuidedGradCam or GuidedBackprop x LayerGradCam, Saliency,
  InputXGradient, NoiseTunnel(Saliency), IntegratedGradients) and pytorch-grad-cam
  (GradCAMPlusPlus).  Each peer's map is compared with ours first; a peer that disagrees by more
  than ``AGREEMENT`` is reported with its difference and not timed (it computes something else).
* Temporal (``temporal``, issue 5): occlusion against Captum's Occlusion, frame masking against
  Captum's FeatureAblation, TSR against the reference loop (one base attribution per mask), on the
  default zoo model and r3d-sides; the long methods are measured here, not in the methods table.
* Video (``video_io``): sampling a clip (ours against OpenCV decoding every frame) and writing H.264.

The report (``report``) goes to DIR/BENCHMARKS.md, the figures to DIR/bench.json.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from pathlib import Path

import torch

from ..methods.machinery.registry import list_methods
from ..models.zoo import zoo_names
from .host import cpu_name
from .methods import ALL_METHODS_MODELS, LRP_MODELS, TARGET_EXEMPT, TARGET_SECONDS, TARGET_TEXT, bench_methods
from .report import benchmarks_markdown
from .subjects import DEFAULT_MODEL, bench_model, subject
from .temporal import TEMPORAL_MODELS, TEMPORAL_REPEATS, bench_temporal
from .video_io import bench_video


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    """The CPU, threads and library versions the figures were measured with."""
    return {
        "cpu": cpu_name(),
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
    zoo = set(zoo_names())
    wanted = [default_model, *all_methods, *lrp_models, *(TEMPORAL_MODELS if temporal else ())]
    names = [n for n in dict.fromkeys(wanted) if n in zoo]
    subjects = {name: subject(name) for name in names}
    measured_lrp = [n for n in lrp_models if n in subjects and "lrp" in list_methods(subjects[n].model)]
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
                list_methods(subjects[default_model].model) if default_model in subjects else []
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
    text = benchmarks_markdown(folder)
    (folder / "BENCHMARKS.md").write_text(text)
    if markdown:
        Path(markdown).write_text(text)
    return results
