"""The report, BENCHMARKS.md: the measurements as Markdown tables, and the tables of the
measurements made by their own commands (``QUALITY``) copied from the results folder."""

from __future__ import annotations

from pathlib import Path

from .methods import AGREEMENT, MOTION_TARGET_METHODS, TARGET_SECONDS
from .temporal import TEMPORAL_CASES, TSR_SECONDS


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


# Measurements made by their own commands (quality, and the command line's start-up): (results stem, title, command).
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
    (
        "cli_startup",
        "Command-line start-up (issue 17)",
        "python benchmarks/cli_startup.py --baseline DIR --baseline-label 'before (010da33)'",
    ),
    (
        "checkouts",
        "Before and after issue 17's restructuring: the same explanations, as fast",
        "python benchmarks/checkouts.py --baseline DIR --baseline-label 'before issue 17 (0e0c60d)' "
        "--label 'after (this branch)'",
    ),
    (
        "checkouts_r3d",
        "Before and after issue 17: the two 3D-CNN cases measured again, 7 processes each",
        "python benchmarks/checkouts.py --baseline DIR --baseline-label 'before issue 17 (0e0c60d)' "
        "--label 'after (this branch)' --runs 7 --only r3d-sides:frame_mask,r3d-sides:lrp --name checkouts_r3d",
    ),
    (
        "app_speed",
        "The app's own speed in Chromium (issue 18)",
        "python benchmarks/app_speed.py --markdown BENCHMARKS.md",
    ),
    (
        "incremental",
        "The perturbation engines for 3D CNNs against whole clips, Captum and the TSR loop (issue 20, point 4)",
        "python benchmarks/incremental.py --repeats 3 --window 16",
    ),
    (
        "batch",
        "Datasets: `xai batch` on local workers and on Ray against a plain loop (issue 21)",
        "python benchmarks/batch.py --clips 64 --repeats 3",
    ),
)


def quality_markdown(folder: Path) -> list[str]:
    """The tables of the measurements made by their own commands (``QUALITY``) found in ``folder``
    (NAME.md), each under its command."""
    found = [(stem, title, command) for stem, title, command in QUALITY if (folder / f"{stem}.md").is_file()]
    if not found:
        return []
    lines = [
        "",
        "## Measured by their own commands",
        "",
        "How well the explanations find the ground truth of Moving Shapes, whether they agree with their peers,",
        "and how fast the command line starts. Each table is copied from its own command's results in this folder",
        "when the suite runs; rerun the command to renew it.",
    ]
    for stem, title, command in found:
        text = (folder / f"{stem}.md").read_text().strip()
        lines += ["", f"### {title}", "", f"`{command}` (benchmarks/results/{stem}.md)", "", text]
    return lines


def benchmarks_markdown(folder: Path) -> str:
    """BENCHMARKS.md from the suite's last results in ``folder`` (bench.json) and the tables of the
    commands measured on their own (``QUALITY``): what a command that renews one table writes."""
    import json

    results = json.loads((Path(folder) / "bench.json").read_text())
    return "\n".join([to_markdown(results), *quality_markdown(Path(folder))])


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
