"""The GPU against the CPU (issue 20, point 5): ``python benchmarks/cuda.py [--repeats 3]
[--models r3d-sides,cnn_transformer-sides] [--methods ...] [--devices cpu,cuda]``.

For each zoo model and method, in one run: the median over ``--repeats`` (GPU, after one untimed
call: CUDA's start, cuDNN's choice of kernels) and ``--cpu-repeats`` of ``explain``'s wall time
on each device, the ratio,
and, for occlusion, Captum's ``Occlusion`` on the GPU (one perturbed clip a pass, as it runs by
default) beside ours.  The GPU's times include the clip's transfer and the maps' copy back: what a
user waits for.  Writes results/cuda.md and .json with the card's name (``torch.cuda``), the CPU
and the torch version.  Run on the ``device`` tool's machine by benchmarks/gpu_session.sh.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from xai_core import explain, list_methods
from xai_core.bench.peers import captum_occlusion
from xai_core.methods.machinery.perturbation import fill_clip
from xai_core.methods.machinery.registry import method_specs
from xai_core.models.zoo import load_model
from xai_core.video import load_video

HERE = Path(__file__).resolve().parent
METHODS = ("gradcam", "saliency", "integrated_gradients", "smoothgrad", "occlusion", "frame_mask", "tsr")


def timed(fn, repeats: int, device: str) -> list[float]:
    """Wall seconds of ``fn()`` ``repeats`` times (on a GPU after one untimed call: CUDA's start,
    cuDNN's choice of kernels)."""
    if device.startswith("cuda"):
        fn()
    seconds = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(models: list[str], methods: list[str], devices: list[str], repeats: int, cpu_repeats: int) -> dict:
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "cpu_repeats": cpu_repeats,
        "rows": [],
    }
    for module in {m for spec in method_specs() for m in spec.imports}:  # no first import inside a time
        importlib.import_module(module)
    for name in models:
        on = {device: load_model(name, device=device) for device in devices}
        clip = load_video("shapes:7?noise=8&distractors=2", model=on[devices[0]])
        for method in methods:
            row = {"model": name, "method": method}
            for device, model in on.items():
                if method not in list_methods(model):
                    row[device] = None
                    continue
                runs = repeats if device.startswith("cuda") else cpu_repeats
                times = timed(lambda m=model, c=clip, k=method: explain(m, c, k, target=0), runs, device)
                row[device] = statistics.median(times)
                print(name, method, device, [round(t, 3) for t in times], flush=True)
            gpu = next((d for d in devices if d.startswith("cuda")), None)
            if method == "occlusion" and gpu is not None:
                peer = on[gpu]
                row["captum_gpu"] = statistics.median(timed(lambda m=peer, c=clip: _captum(m, c), repeats, gpu))
            result["rows"].append(row)
    return result


def _captum(model, clip) -> None:
    """Captum's Occlusion with our occlusion's default window and stride, on the model's device."""
    from xai_core.api import prepare
    from xai_core.methods.machinery.registry import get_method

    params = get_method("occlusion").resolve_params({})
    prepared = prepare(model, clip, 0)
    fill = fill_clip(model, prepared.x, params["baseline"], params["blur_sigma"])
    captum_occlusion(model, prepared.x, prepared.target, fill, params["window"], params["stride"])


def markdown(r: dict, devices: list[str]) -> str:
    lines = [
        f"{r['date']}: GPU {r['gpu'] or 'none'}; CPU {r['cpu']}, {r['threads']} torch threads; torch {r['torch']}; "
        f"median of {r['repeats']} on the GPU (after one untimed call), {r['cpu_repeats']} on the CPU. Seconds per "
        "explanation of one Moving Shapes clip (16 frames).",
        "",
        "| model | method | " + " | ".join(devices) + " | CPU / GPU | Captum Occlusion, GPU |",
        "|---|---|" + "---|" * len(devices) + "---|---|",
    ]
    for row in r["rows"]:
        cells = [f"{row[d]:.3f} s" if row.get(d) is not None else "–" for d in devices]
        cpu, gpu = row.get(devices[0]), row.get(devices[-1])
        ratio = f"{cpu / gpu:.1f}x" if cpu and gpu and len(devices) > 1 else "–"
        captum = f"{row['captum_gpu']:.3f} s" if "captum_gpu" in row else "–"
        lines.append(f"| {row['model']} | {row['method']} | " + " | ".join(cells) + f" | {ratio} | {captum} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="r3d-sides,cnn_transformer-sides")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs on the GPU")
    parser.add_argument("--cpu-repeats", type=int, default=1, help="timed runs on the CPU (occlusion: minutes)")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    devices = args.devices.split(",")
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        parser.error("no CUDA device here: run it on the device tool's machine (benchmarks/gpu_session.sh)")
    result = measure(args.models.split(","), args.methods.split(","), devices, args.repeats, args.cpu_repeats)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cuda.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result, devices)
    (out / "cuda.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
