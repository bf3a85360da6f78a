"""How far float32 results move with the order of summation alone: ``python benchmarks/float32_order.py``.

Captum's FeatureAblation (a feature per frame) on the default zoo model and the benchmark clip, run
with perturbations_per_eval=1 and =32 (the same numbers, summed in batches of different sizes), in
float32, against ours (``frame_mask``) and against a float64 run.  Each figure is
max |a - b| / (max - min of the first); writes results/float32_order.md (and .json).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from xai_core.bench.peers import captum_frame_ablation
from xai_core.bench.subjects import DEFAULT_MODEL, subject
from xai_core.methods.machinery.perturbation import fill_clip
from xai_core.methods.machinery.registry import get_method


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.ptp(a))


def measure() -> dict:
    s = subject(DEFAULT_MODEL)
    model, x, target = s.model, s.x, s.target
    fill = fill_clip(model, x, "zero")
    one = captum_frame_ablation(model, x, target, fill).double().numpy()
    batched = captum_frame_ablation(model, x, target, fill, per_eval=32).double().numpy()
    spec = get_method("frame_mask")
    ours = np.asarray(spec.fn(model, x, target, **spec.resolve_params({})).temporal, dtype=np.float64)
    model64, x64 = model.double(), x.double()
    exact = captum_frame_ablation(model64, x64, target, fill_clip(model64, x64, "zero")).numpy()
    return {
        "model": DEFAULT_MODEL,
        "captum_ppe1_vs_ppe32": difference(one, batched),
        "ours_vs_captum_ppe1": difference(one, ours),
        "ours_vs_captum_ppe32": difference(batched, ours),
        "captum_float64_vs_float32": difference(exact, one),
        "captum_float64_vs_ours": difference(exact, ours),
    }


def main() -> int:
    torch.set_num_threads(2)
    r = measure()
    out = Path(__file__).resolve().parent / "results"
    (out / "float32_order.json").write_text(json.dumps(r, indent=2) + "\n")
    lines = [
        f"frame_mask on `{r['model']}`, `shapes:1`, baseline zero; max |a - b| over the range of a:",
        "",
        "| a | b | difference |",
        "|---|---|---|",
        f"| Captum FeatureAblation, ppe=1 | the same, ppe=32 | {r['captum_ppe1_vs_ppe32']:.1e} |",
        f"| Captum, ppe=1 | ours | {r['ours_vs_captum_ppe1']:.1e} |",
        f"| Captum, ppe=32 | ours | {r['ours_vs_captum_ppe32']:.1e} |",
        f"| Captum in float64 | Captum in float32 (ppe=1) | {r['captum_float64_vs_float32']:.1e} |",
        f"| Captum in float64 | ours in float32 | {r['captum_float64_vs_ours']:.1e} |",
    ]
    (out / "float32_order.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
