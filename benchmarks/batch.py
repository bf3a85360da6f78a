"""Dataset throughput of ``xai batch`` (issue 21, point 5):
``python benchmarks/batch.py [--clips 64] [--repeats 3] [--method gradcam] [--model cnn_transformer-sides]``.

The same items (one model, one method, ``--clips`` Moving Shapes clips ``shapes:0..N``), each a
saved run and a row, computed in one run by:

* a plain loop in one process: ``ItemRunner.run`` item after item (what the workers run), after
  loading the model once; beside it, the bare loop ``explain(model, load_video(clip), method)``
  (no run store, no row) for what the batch's bookkeeping costs;
* the local engine with 1 and 2 worker processes (torch threads: the cores over the workers);
* the Ray engine on a local cluster of 1 and 2 CPUs (started by the batch, as ``--engine ray``).

Every contender runs in a fresh process, as a user starts it (the command ``xai batch``, or a
script for the loops).  Per contender: the median over ``--repeats`` of the wall time of the whole
command (Python and its imports, the workers started and loading the model, a Ray cluster started)
as items per minute, the time from the command's start to its first item finished, and the
steady rate (items after the first finished, over the time from the first to the last); ratios
against the plain loop measured in the same run.  Ray's overhead
per item: its steady seconds an item with one worker less the local engine's with one worker,
over the plain loop's seconds an item.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from xai_core.api import explain
from xai_core.batch import BatchSpec
from xai_core.batch.config import RunnerConfig
from xai_core.batch.results import read_rows
from xai_core.batch.runner import ItemRunner
from xai_core.models.zoo import load_model
from xai_core.video import load_video

ONE_CORE = "local x1, 1 thread"  # one worker on one core: what each of two workers gets
LOOPS = {"plain loop": "plain", "bare explain loop": "bare"}
CONTENDERS = ("plain loop", "bare explain loop", "local x1", "local x2", ONE_CORE, "ray x1", "ray x2")


def steady(finished: list[float]) -> float:
    """Seconds an item between the first and the last item to finish."""
    finished = sorted(finished)
    return (finished[-1] - finished[0]) / max(1, len(finished) - 1)


def plain_loop(spec: BatchSpec, folder: Path) -> list[float]:
    """The peer, in this process: the workers' own function, item after item; when each finished."""
    runner = ItemRunner(RunnerConfig(runs=str(folder / "runs")))
    finished = []
    for item in spec.items():
        row = runner.run(item)
        if row["status"] != "ok":
            raise RuntimeError(row["error"])
        finished.append(time.time())
    return finished


def bare_loop(spec: BatchSpec) -> list[float]:
    """``explain`` on each clip, nothing kept; when each finished."""
    model = load_model(spec.models[0])
    finished = []
    for item in spec.items():
        explain(model, load_video(item.clip.source, model=model), item.method)
        finished.append(time.time())
    return finished


def contender(name: str, spec: BatchSpec, folder: Path) -> dict:
    """One contender in a fresh process, as a user starts it: the whole command's wall time (Python,
    imports, workers, a Ray cluster) and the steady seconds an item."""
    models, methods = ",".join(spec.models), ",".join(spec.methods)
    if name in LOOPS:
        argv = [sys.executable, __file__, "--inner", LOOPS[name], "--model", models, "--method", methods,
                "--clips", str(spec.clips.split("..")[1]), "--inner-out", str(folder)]  # fmt: skip
    else:
        engine, workers = name.split(",")[0].split(" x")
        argv = [sys.executable, "-m", "xai_core", "batch", "--models", models, "--methods", methods,
                "--clips", spec.clips, "--out", str(folder), "--engine", engine, "--workers", workers]  # fmt: skip
        if name == ONE_CORE:
            argv += ["--threads", "1"]
    start, started = time.perf_counter(), time.time()
    done = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{name}: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    if name in LOOPS:
        finished = json.loads((folder / "finished.json").read_text())
        return {"wall": wall, "steady": steady(finished), "first": min(finished) - started, "failed": 0.0,
                "errors": []}  # fmt: skip
    table = read_rows(folder)
    failed = table[table["status"] != "ok"]
    if len(failed):  # said, and counted in the results: a benchmark does not hide a failure
        print(f"{name}: {len(failed)} failed:", failed["error"].tolist(), flush=True)
    ok = table[table["status"] == "ok"]
    return {"wall": wall, "steady": steady(ok["finished"].tolist()), "first": ok["finished"].min() - started,
            "failed": float(len(failed)), "errors": failed["error"].tolist()}  # fmt: skip


def measure(clips: int, repeats: int, method: str, model: str) -> dict:
    spec = BatchSpec([model], [method], f"shapes:0..{clips}")
    runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
    for _ in range(repeats):
        for name in runs:
            folder = Path(tempfile.mkdtemp(prefix="batch_bench_"))
            try:
                runs[name].append(contender(name, spec, folder))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            print(name, {k: round(v, 3) for k, v in runs[name][-1].items() if isinstance(v, float)}, flush=True)
    result = {
        "model": model,
        "method": method,
        "clips": clips,
        "repeats": repeats,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "engines": {},
    }
    for name, values in runs.items():
        wall = statistics.median(v["wall"] for v in values)
        each = statistics.median(v["steady"] for v in values)
        result["engines"][name] = {"wall": wall, "steady_item": each, "walls": [v["wall"] for v in values],
                                   "first_row": statistics.median(v["first"] for v in values),
                                   "failed": sum(v.get("failed", 0) for v in values),
                                   "errors": [e for v in values for e in v.get("errors", [])],
                                   "items_per_min": clips / wall * 60, "steady_items_per_min": 60 / each}  # fmt: skip
    loop = result["engines"]["plain loop"]
    for entry in result["engines"].values():
        entry["ratio"] = entry["items_per_min"] / loop["items_per_min"]
        entry["steady_ratio"] = entry["steady_items_per_min"] / loop["steady_items_per_min"]
    engines = result["engines"]
    result["ray_overhead_share"] = (engines["ray x1"]["steady_item"] - engines["local x1"]["steady_item"]) / loop[
        "steady_item"
    ]
    result["scaling_local"] = engines["local x1"]["wall"] / engines["local x2"]["wall"]
    result["scaling_ray"] = engines["ray x1"]["wall"] / engines["ray x2"]["wall"]
    result["scaling_per_core"] = engines[ONE_CORE]["steady_item"] / engines["local x2"]["steady_item"]
    result["scaling_per_core_whole"] = engines[ONE_CORE]["wall"] / engines["local x2"]["wall"]
    result["thread_gain"] = engines[ONE_CORE]["steady_item"] / engines["local x1"]["steady_item"]
    result["steady_scaling_local"] = engines["local x1"]["steady_item"] / engines["local x2"]["steady_item"]
    return result


def markdown(r: dict) -> str:
    lines = [
        f"`{r['method']}` on `{r['model']}` over {r['clips']} Moving Shapes clips (`shapes:0..{r['clips']}`), "
        f"each item a saved run and a row; median of {r['repeats']} runs, {r['date']}, {r['cores']} cores, "
        f"torch {r['torch']}, CPU.",
        "",
        "| engine | whole batch | first row | items / min | vs plain loop | steady s / item | steady items / min "
        "| vs plain loop | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in r["engines"].items():
        lines.append(
            f"| {name} | {e['wall']:.1f} s | {e['first_row']:.1f} s | {e['items_per_min']:.0f} | {e['ratio']:.2f}x "
            f"| {e['steady_item'] * 1000:.0f} ms | {e['steady_items_per_min']:.0f} | {e['steady_ratio']:.2f}x "
            f"| {int(e.get('failed', 0))} |"
        )
    lines += [
        "",
        "Two workers against one (goal: at least 1.7x on 2 cores):",
        "",
        f"* each worker on one core (one torch thread): whole batch {r['scaling_per_core_whole']:.2f}x, "
        f"steady {r['scaling_per_core']:.2f}x;",
        f"* one worker given both cores (torch's two threads, the default for one worker): whole batch local "
        f"{r['scaling_local']:.2f}x, Ray {r['scaling_ray']:.2f}x; steady, local {r['steady_scaling_local']:.2f}x. "
        "One worker already uses both",
        f"  cores through torch's threads ({r['thread_gain']:.2f}x its one-thread rate), so a "
        "second worker adds only what the threads leave.",
        "",
        f"Ray's overhead per item (steady, one worker, against the local engine's worker): "
        f"{r['ray_overhead_share']:.1%} of the plain loop's item (goal: under 10%).",
        "The whole batch counts the start-up: worker processes importing torch and loading the model, and for",
        "Ray starting a local cluster; first row: from the command's start to its first item finished; the",
        "steady rate counts from the first item finished to the last.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="gradcam")
    parser.add_argument("--model", default="cnn_transformer-sides")
    parser.add_argument("--markdown", default=str(Path(__file__).parent / "results" / "batch.md"))
    parser.add_argument("--from-json", help="only rewrite the table from a results .json")
    parser.add_argument("--inner", choices=sorted(LOOPS.values()), help=argparse.SUPPRESS)  # a loop's own process
    parser.add_argument("--inner-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        spec = BatchSpec([args.model], [args.method], f"shapes:0..{args.clips}")
        out = Path(args.inner_out)
        finished = plain_loop(spec, out) if args.inner == "plain" else bare_loop(spec)
        (out / "finished.json").write_text(json.dumps(finished))
        return 0
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
    else:
        result = measure(args.clips, args.repeats, args.method, args.model)
    text = markdown(result)
    Path(args.markdown).write_text(text)
    if not args.from_json:
        Path(args.markdown).with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
