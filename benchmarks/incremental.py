"""The incremental engine for 3D CNNs against whole clips and Captum (issue 20, point 4):
``python benchmarks/incremental.py [--repeats 3] [--window 16] [--markdown results/incremental.md]``.

On the zoo's ``r3d-sides`` and the benchmark clip (float32, this machine's CPU threads), the same
perturbations scored three ways in one run: ours incrementally (each layer recomputes the region
the perturbation reaches), ours with whole clips (``PerturbationEngine(plain=True)``), and
Captum's Occlusion / FeatureAblation (one perturbed clip per pass).  Occlusion: windows of one
frame and ``--window`` pixels square, side by side (Captum's stride may not exceed its window);
frame masking: one frame at a time.  Median seconds of ``--repeats`` runs; ratios against Captum
and against whole clips; the largest difference from Captum's scores (of their range).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from xai_core.bench.peers import captum_frame_ablation, captum_occlusion
from xai_core.bench.subjects import subject
from xai_core.methods.machinery.engine import PerturbationEngine
from xai_core.methods.machinery.perturbation import Perturbation, fill_clip

MODEL = "r3d-sides"


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def measure(repeats: int, window: int) -> dict:
    s = subject(MODEL)
    model, x, target = s.model, s.x, s.target
    t, h, w = x.shape[1], x.shape[3], x.shape[4]
    fill = fill_clip(model, x, "zero")
    rows = []
    cases = {
        "occlusion": [
            Perturbation(f, f + 1, (y, y + window, z, z + window))
            for f in range(t)
            for y in range(0, h - window + 1, window)
            for z in range(0, w - window + 1, window)
        ],
        "frame_mask": [Perturbation(f, f + 1) for f in range(t)],
    }
    for method, windows in cases.items():
        engine = PerturbationEngine(model, x, target, "zero")
        plain = PerturbationEngine(model, x, target, "zero", plain=True)
        assert engine.incremental is not None and plain.incremental is None
        ours_s, ours = timed(lambda e=engine, p=windows: e.scores(p), repeats)
        whole_s, whole = timed(lambda e=plain, p=windows: e.scores(p), repeats)
        if method == "occlusion":
            peer = lambda: captum_occlusion(model, x, target, fill, (1, window, window), (1, window, window))  # noqa: E731
        else:
            peer = lambda: captum_frame_ablation(model, x, target, fill)  # noqa: E731
        peer_s, peer_out = timed(peer, repeats)
        drops = (engine.base_score - ours).numpy()
        if method == "occlusion":  # Captum's map at each window's top-left pixel is that window's drop
            reference = np.array([float(peer_out[p.start, p.box[0], p.box[2]]) for p in windows])
        else:
            reference = peer_out.double().numpy()
        rows.append(
            {
                "method": method,
                "perturbations": len(windows),
                "ours_s": ours_s,
                "whole_s": whole_s,
                "captum_s": peer_s,
                "vs_captum": peer_s / ours_s,
                "vs_whole": whole_s / ours_s,
                "max_diff_of_range": float(np.abs(drops - reference).max() / max(np.ptp(reference), 1e-12)),
                "ours_equal_whole": float((ours - whole).abs().max()),
            }
        )
    return {"model": MODEL, "repeats": repeats, "window": window, "threads": torch.get_num_threads(), "rows": rows}


def markdown(result: dict) -> str:
    lines = [
        f"Model `{result['model']}`, the benchmark clip, float32, {result['threads']} threads, median of "
        f"{result['repeats']} runs; occlusion windows of 1 frame x {result['window']}x{result['window']} pixels, "
        "side by side.",
        "",
        "| method | perturbations | ours (incremental) | ours (whole clips) | Captum | vs Captum | vs whole clips "
        "| max diff from Captum (of range) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| `{r['method']}` | {r['perturbations']:,} | {r['ours_s']:.2f} s | {r['whole_s']:.2f} s | "
            f"{r['captum_s']:.2f} s | {r['vs_captum']:.1f}x | {r['vs_whole']:.1f}x | {r['max_diff_of_range']:.1e} |"
        )
    goals = {"occlusion": 10.0, "frame_mask": 3.0}
    said = [
        f"`{r['method']}` {r['vs_captum']:.1f}x against the goal of {goals[r['method']]:g}x: "
        + ("met" if r["vs_captum"] >= goals[r["method"]] else "not met")
        for r in result["rows"]
    ]
    lines += ["", f"Issue 20's goals against Captum on {result['model']}: " + "; ".join(said) + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--markdown", default=str(Path(__file__).parent / "results" / "incremental.md"))
    parser.add_argument("--from-json", help="only rewrite the table from a results .json")
    args = parser.parse_args()
    result = json.loads(Path(args.from_json).read_text()) if args.from_json else measure(args.repeats, args.window)
    text = markdown(result)
    Path(args.markdown).write_text(text)
    if not args.from_json:
        Path(args.markdown).with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
