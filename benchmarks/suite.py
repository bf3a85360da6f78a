"""The performance suite: ``python -m xai_core bench [--quick] --out DIR [--markdown BENCHMARKS.md]``.

Every figure is the median of several runs, measured in this process; ratios compare two
implementations measured side by side in the same run (never against numbers from elsewhere).
Peers: Captum's LayerGradCam for Grad-CAM (same layer, same target, same upsampling; the maps
are checked to agree before timing), OpenCV's VideoCapture for decoding.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import xai_core
from xai_core.explanation import resolve_target
from xai_core.methods.registry import get_method
from xai_core.video import load_video, sample_clips, write_video

DEFAULT_MODELS = ("cnn_transformer-sides", "r3d-sides")


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> dict:
    """Run ``fn`` warmup + repeats times; median, min and max of the timed runs (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "runs": repeats}


def captum_gradcam(model, x: torch.Tensor, target_index: int | None) -> torch.Tensor:
    """The peer: Captum's LayerGradCam on the model's Grad-CAM layer, upsampled the same way."""
    from captum.attr import LayerGradCam

    from xai_core.methods.cam import upsample_cam

    layer = model.layer()
    if model.layout == "BCTHW":
        attr = LayerGradCam(lambda v: model.net(v), layer).attribute(x.transpose(1, 2), target=target_index)
        cam = attr.detach()[0, 0]
    else:
        cam = LayerGradCam(model, layer).attribute(x, target=target_index).detach()[:, 0]
    return upsample_cam(cam, x.shape[1], tuple(x.shape[3:]))


def bench_model(name: str, repeats: int) -> dict:
    model = xai_core.load_model(name, device="cpu")
    clip = xai_core.load_video("shapes:1", model=model)
    x = model.preprocess(clip)

    def forward():
        with torch.inference_mode():
            model(x)

    ours = xai_core.explain(model, clip, "gradcam")
    target = resolve_target(model.task, model.labels, ours.target["index"])
    peer = captum_gradcam(model, x, target.index)
    agree = float(np.abs(peer.numpy() - ours.spatial).max() / (np.abs(ours.spatial).max() + 1e-12))
    method = get_method("gradcam").fn
    gradcam = median_seconds(lambda: method(model, x, target), repeats)
    captum = median_seconds(lambda: captum_gradcam(model, x, target.index), repeats)
    whole = median_seconds(lambda: xai_core.explain(model, clip, "gradcam"), repeats)
    return {
        "model": name,
        "arch": model.info.arch,
        "input": list(x.shape),
        "predict": median_seconds(forward, repeats),
        "gradcam": gradcam,
        "explain_call": whole,
        "captum_layergradcam": captum,
        "gradcam_vs_captum_ratio": captum["median"] / gradcam["median"],
        "max_relative_difference_to_captum": agree,
    }


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
    }


def run(quick: bool = False, models: tuple[str, ...] = DEFAULT_MODELS) -> dict:
    repeats = 3 if quick else 7
    available = [m for m in models if m in xai_core.zoo_names()]
    return {
        "machine": machine(),
        "quick": quick,
        "models": [bench_model(m, repeats) for m in available],
        "video": bench_video(repeats),
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }


def _ms(entry: dict) -> str:
    return f"{entry['median'] * 1000:.0f} ms"


def to_markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Regenerate with `python -m xai_core bench --out benchmarks/results --markdown BENCHMARKS.md`.",
        "Medians of several runs in one process; each ratio compares two implementations measured side by side",
        "in the same run (ratio > 1: ours is faster).",
        "",
        f"Measured {results['when']} on {m['cpu']}, {m['torch_threads']} torch threads, torch {m['torch']}, "
        f"Python {m['python']}, CUDA {'yes' if m['cuda'] else 'no'}.",
        "",
        "## Models: prediction and Grad-CAM per 32-frame clip",
        "",
        "Grad-CAM (ours) is the registered method on a preprocessed clip and a given target (forward, backward,",
        "maps upsampled to 32x112x112, frame-importance curve): the same work as the peer, Captum's `LayerGradCam`",
        "on the same layer and target, upsampled the same way; the maps agree to the stated relative difference.",
        "The whole `xai_core.explain(model, clip, 'gradcam')` call adds preprocessing, the clip's hash and the",
        "prediction forward pass that picks the target and is stored with the explanation.",
        "",
        "| model | predict | Grad-CAM (ours) | Captum LayerGradCam | ratio | max rel. difference | whole explain() |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["models"]:
        lines.append(
            f"| {r['model']} | {_ms(r['predict'])} | {_ms(r['gradcam'])} | {_ms(r['captum_layergradcam'])} | "
            f"{r['gradcam_vs_captum_ratio']:.2f}x | {r['max_relative_difference_to_captum']:.1e} | "
            f"{_ms(r['explain_call'])} |"
        )
    lines += [
        "",
        "## Video: sampling a clip to the model's input",
        "",
        "`load_video(path, frames=32, size=(112, 112))` decodes once, streaming, and keeps only the sampled frames.",
        "The peer decodes every frame with OpenCV's `VideoCapture` and resizes it (what a naive loader does).",
        "",
        "| clip | load_video (32 frames) | OpenCV, every frame | ratio |",
        "|---|---|---|---|",
    ]
    for name, r in results["video"].items():
        if name.startswith("write_"):
            continue
        lines.append(
            f"| {name} | {_ms(r['load_video_32x112'])} | {_ms(r['opencv_decode_all_resize'])} | {r['ratio']:.2f}x |"
        )
    lines += ["", f"Writing a 32-frame 112x112 H.264 mp4: {_ms(results['video']['write_h264_32x112'])}.", ""]
    return "\n".join(lines)


def main(out: str, quick: bool = False, markdown: str | None = None) -> dict:
    results = run(quick=quick)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    text = to_markdown(results)
    (folder / "BENCHMARKS.md").write_text(text)
    if markdown:
        Path(markdown).write_text(text)
    return results
