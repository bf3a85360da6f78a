"""Two checkouts of the package side by side: the same explanations, as fast?
``python benchmarks/checkouts.py --baseline DIR [--baseline-label TEXT] [--runs 3]``.

For a restructuring that must not change behaviour (issue 17, point 8): each checkout (this one,
and ``DIR``, e.g. ``git archive`` of an older commit unpacked there) runs the same explanations in
fresh processes (``PYTHONPATH`` = the checkout, the same zoo), the processes of the two interleaved
so that the machine's load hits both alike; each process explains every case once untimed, then
once timed.  Reported per case: the median seconds of ``--runs`` processes per checkout, their
ratio, and the largest difference between the two checkouts' maps and curves over the range of
the baseline's values (0: identical numbers).  Writes results/checkouts.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLIP = "shapes:1"  # BENCHMARKS.md's 32-frame clip
CASES = (  # (model, method, parameters)
    ("cnn_transformer-sides", "gradcam", {}),
    ("cnn_transformer-sides", "saliency", {}),
    ("cnn_transformer-sides", "integrated_gradients", {}),
    ("cnn_transformer-sides", "occlusion", {}),
    ("cnn_transformer-sides", "frame_mask", {}),
    ("cnn_transformer-sides", "tsr", {}),
    ("r3d-sides", "gradcam", {}),
    ("r3d-sides", "lrp", {}),
    ("r3d-sides", "frame_mask", {}),
)
WORKER = """
import json, sys, time
import numpy as np
import xai_core
cases, clip_source, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
models, clips, seconds, arrays = {}, {}, [], {}
for i, (name, method, params) in enumerate(cases):
    if name not in models:
        models[name] = xai_core.load_model(name, device="cpu")
        clips[name] = xai_core.load_video(clip_source, model=models[name])
    xai_core.explain(models[name], clips[name], method, **params)  # untimed: caches warm
    start = time.perf_counter()
    expl = xai_core.explain(models[name], clips[name], method, **params)
    seconds.append(time.perf_counter() - start)
    for part in ("spatial", "temporal"):
        value = getattr(expl, part)
        if value is not None:
            arrays[f"{i}_{part}"] = np.asarray(value, dtype=np.float64)
np.savez(out, **arrays)
print(json.dumps({"seconds": seconds, "module": xai_core.__file__}))
"""


def run_process(checkout: Path, out: Path, checkpoints: Path, cases: tuple = CASES) -> list[float]:
    """One fresh process of ``checkout`` explaining every case: the timed seconds of each."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "XAI_CHECKPOINTS": str(checkpoints)}
    cases = json.dumps([list(c) for c in cases])
    done = subprocess.run(
        [sys.executable, "-c", WORKER, cases, CLIP, str(out)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{checkout}: the worker failed:\n{done.stderr[-3000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(answer["module"]).resolve().is_relative_to(checkout.resolve()):
        raise RuntimeError(f"{checkout}: the worker imported {answer['module']}, another checkout's package")
    return answer["seconds"]


def difference(ours: dict, theirs: dict, index: int) -> float | None:
    """The largest |ours - baseline| over the baseline's range, over case ``index``'s map and curve."""
    import numpy as np

    worst = None
    for part in ("spatial", "temporal"):
        key = f"{index}_{part}"
        if key not in ours or key not in theirs:
            continue
        a, b = ours[key], theirs[key]
        if a.shape != b.shape:
            return float("inf")
        span = float(b.max() - b.min()) or 1.0
        value = float(np.abs(a - b).max()) / span
        worst = value if worst is None else max(worst, value)
    return worst


def measure(checkouts: dict[str, Path], runs: int, checkpoints: Path, cases: tuple = CASES) -> dict:
    import numpy as np

    times: dict[str, list[list[float]]] = {label: [] for label in checkouts}
    maps: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="xai-checkouts-") as tmp:
        for r in range(runs):
            for label, checkout in checkouts.items():  # interleaved: a, b, a, b, ...
                out = Path(tmp) / f"{r}_{len(maps)}_{label.split()[0]}.npz"
                times[label].append(run_process(checkout, out, checkpoints, cases))
                with np.load(out) as arrays:
                    maps[label] = {k: arrays[k] for k in arrays.files}
                print(f"run {r + 1}/{runs} {label}: {sum(times[label][-1]):.1f} s", file=sys.stderr, flush=True)
    labels = list(checkouts)
    rows = []
    for i, (model, method, params) in enumerate(cases):
        medians = {label: statistics.median(run[i] for run in times[label]) for label in labels}
        rows.append(
            {
                "model": model,
                "method": method,
                "params": params,
                "seconds": {label: [run[i] for run in times[label]] for label in labels},
                "median": medians,
                "ratio": medians[labels[1]] / medians[labels[0]] if len(labels) > 1 else None,
                "difference": difference(maps[labels[0]], maps[labels[1]], i) if len(labels) > 1 else None,
            }
        )
    return {"labels": labels, "checkouts": {k: str(v) for k, v in checkouts.items()}, "rows": rows}


def to_markdown(report: dict) -> str:
    a, b = report["labels"]
    lines = [
        f"Fresh processes of each checkout on the same zoo and clip (`{CLIP}`, 32 frames), interleaved; median of "
        f"{report['runs']} processes per checkout (each explains once untimed, then once timed), measured "
        f"{report['when']} on {report['machine']} (load average {report['load_average'][0]:.1f} at the start, "
        f"{report['load_average'][1]:.1f} at the end). Difference: the largest |{a} - {b}| over the range of "
        f"{b}'s values, maps and curves.",
        "",
        f"| model | method | {a} | {b} | {b} ÷ {a} | difference |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        diff = r["difference"]
        shown = "—" if diff is None else ("0" if diff == 0 else f"{diff:.1e}")
        lines.append(
            f"| {r['model']} | `{r['method']}` | {r['median'][a]:.2f} s | {r['median'][b]:.2f} s | "
            f"{r['ratio']:.2f} | {shown} |"
        )
    return "\n".join(lines) + "\n"


def machine() -> str:
    """The CPU, its cores and Python's version (``xai_core.bench.host``)."""
    from xai_core.bench.host import describe

    return describe()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout's folder")
    parser.add_argument("--baseline-label", default="baseline")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--runs", type=int, default=3)
    zoo = Path(os.environ.get("XAI_CHECKPOINTS", ROOT / "checkpoints"))
    parser.add_argument("--checkpoints", type=Path, default=zoo, help="the zoo both checkouts read")
    parser.add_argument("--only", help="MODEL:METHOD cases to measure, comma-separated (default: all)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--name", default="checkouts", help="results/NAME.md and .json")
    args = parser.parse_args(argv)
    cases = CASES
    if args.only:
        wanted = {tuple(item.split(":", 1)) for item in args.only.split(",")}
        cases = tuple(c for c in CASES if (c[0], c[1]) in wanted)
        if len(cases) != len(wanted):
            parser.error(f"--only names cases the script does not have: {args.only}")
    load = [os.getloadavg()[0]]
    result = measure({args.label: ROOT, args.baseline_label: args.baseline}, args.runs, args.checkpoints, cases)
    load.append(os.getloadavg()[0])
    report = {
        **result,
        "runs": args.runs,
        "when": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "load_average": load,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = to_markdown(report)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)
    return report


if __name__ == "__main__":
    main()
