"""How fast the command line answers: ``python benchmarks/cli_startup.py [--baseline DIR]``.

Wall time of fresh ``python -m xai_core`` processes, the median of ``--runs`` runs each:

* ``--help``;
* ``methods`` (no model);
* ``predict --model cnn_transformer-sides --video EMPTY`` on an empty file (an input error,
  which should be reported before any model is loaded).

Each case is also run once under ``python -X importtime``: the largest packages it imported (by
cumulative time) and whether torch was among them.  ``--baseline DIR`` measures another copy of
the package (e.g. ``git archive`` of an older commit, unpacked into DIR) side by side, the runs
of both interleaved, so that the machine's load hits both alike.  Writes
results/cli_startup.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = {  # name: arguments after `python -m xai_core`
    "--help": ["--help"],
    "methods": ["methods"],
    "predict, empty file": ["predict", "--model", "cnn_transformer-sides", "--video", "EMPTY.mp4"],
}
TOP_IMPORTS = 6


def machine() -> str:
    """The CPU, its cores and Python's version (``xai_core.bench.host``)."""
    from xai_core.bench.host import describe

    return describe()


def environment(checkout: Path) -> dict:
    """The environment of a run: ``checkout``'s package first on the path, one thread, this zoo."""
    return {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "OMP_NUM_THREADS": "1",
        "XAI_CHECKPOINTS": os.environ.get("XAI_CHECKPOINTS", str(ROOT / "checkpoints")),
    }


def run_once(checkout: Path, args: list[str], folder: Path, importtime: bool = False) -> tuple[float, int, str]:
    """One fresh process in ``folder``: (wall seconds, exit status, stderr)."""
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "xai_core", *args]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=environment(checkout), capture_output=True, text=True, timeout=300)
    return time.perf_counter() - start, done.returncode, done.stderr


def top_imports(stderr: str, count: int = TOP_IMPORTS) -> tuple[list[dict], bool]:
    """``-X importtime`` output -> the ``count`` largest packages imported (top-level names such as
    ``torch`` or ``cv2``, wherever they were first imported; cumulative milliseconds) and whether
    torch was imported at all."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        module = name.strip()
        if "." not in module and not module.startswith("_"):
            rows.append({"module": module, "ms": int(cumulative) / 1000})
    rows.sort(key=lambda r: -r["ms"])
    return rows[:count], any(r["module"] == "torch" for r in rows)


def measure(checkouts: dict[str, Path], runs: int) -> dict:
    """Per checkout and case: the wall times' median, min and max, exit status, the error line
    (stderr's last line) and the import profile."""
    with tempfile.TemporaryDirectory(prefix="xai-startup-") as tmp:
        folder = Path(tmp)
        (folder / "EMPTY.mp4").write_bytes(b"")
        for checkout in checkouts.values():  # one untimed run each: the files are in the OS cache
            for args in CASES.values():
                run_once(checkout, args, folder)
        times: dict[tuple[str, str], list[float]] = {(c, k): [] for c in checkouts for k in CASES}
        last: dict[tuple[str, str], tuple[int, str]] = {}
        for _ in range(runs):  # interleaved: checkout a case 1, b case 1, a case 2, ...
            for case, args in CASES.items():
                for label, checkout in checkouts.items():
                    seconds, code, stderr = run_once(checkout, args, folder)
                    times[(label, case)].append(seconds)
                    last[(label, case)] = (code, stderr)
        results = {}
        for label, checkout in checkouts.items():
            results[label] = {"checkout": str(checkout), "cases": {}}
            for case, args in CASES.items():
                _, _, profile = run_once(checkout, args, folder, importtime=True)
                imports, torch_loaded = top_imports(profile)
                code, stderr = last[(label, case)]
                lines = [line for line in stderr.splitlines() if line.strip()]
                t = times[(label, case)]
                results[label]["cases"][case] = {
                    "args": args,
                    "median": statistics.median(t),
                    "min": min(t),
                    "max": max(t),
                    "runs": len(t),
                    "exit": code,
                    "stderr_last_line": lines[-1] if lines else "",
                    "torch_imported": torch_loaded,
                    "top_imports": imports,
                }
    return results


def to_markdown(report: dict) -> str:
    """The results as the table BENCHMARKS.md copies (benchmarks/results/cli_startup.md)."""
    checkouts = report["checkouts"]
    lines = [
        f"Fresh `python -m xai_core` processes, median of {report['runs']} runs each (min-max), "
        f"measured {report['when']} on {report['machine']} (load average {report['load_average'][0]:g} at the "
        f"start, {report['load_average'][1]:g} at the end)"
        + (", the checkouts' runs interleaved" if len(checkouts) > 1 else "")
        + "; the largest packages imported, from one `python -X importtime` run.",
        "",
        "| checkout | command | wall time | exit | torch imported | largest packages imported (cumulative) |",
        "|---|---|---|---|---|---|",
    ]
    for label, entry in checkouts.items():
        for case, r in entry["cases"].items():
            imports = ", ".join(f"{i['module']} {i['ms']:.0f} ms" for i in r["top_imports"][:3])
            lines.append(
                f"| {label} | `{case}` | {r['median']:.2f} s ({r['min']:.2f}-{r['max']:.2f}) | {r['exit']} | "
                f"{'yes' if r['torch_imported'] else 'no'} | {imports} |"
            )
    errors = {
        r["stderr_last_line"]
        for entry in checkouts.values()
        for case, r in entry["cases"].items()
        if case.startswith("predict")
    }
    lines += ["", "The empty file's message: " + "; ".join(f"`{e}`" for e in sorted(errors)) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", type=Path, help="another copy of the repository (its xai_core/) to compare")
    parser.add_argument("--baseline-label", default="baseline", help="the baseline's name in the table")
    parser.add_argument("--label", default="this checkout", help="this checkout's name in the table")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    checkouts = {args.label: ROOT}
    if args.baseline:
        if not (args.baseline / "xai_core" / "__main__.py").is_file():
            parser.error(f"{args.baseline} holds no xai_core package")
        checkouts[args.baseline_label] = args.baseline.resolve()
    load = os.getloadavg()[0]
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "runs": args.runs,
        "checkouts": measure(checkouts, args.runs),
        "load_average": [round(load, 1), round(os.getloadavg()[0], 1)],  # 1-minute, at the start and the end
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cli_startup.json").write_text(json.dumps(report, indent=2) + "\n")
    text = to_markdown(report)
    (args.out / "cli_startup.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
