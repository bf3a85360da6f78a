"""Training any zoo architecture on Moving Shapes (``python -m xai_core train``).

Clips are generated on the fly (clean, with NumPy + OpenCV), the Gaussian pixel noise is added
in torch per batch (the same distribution as the generator's own noise, much faster).  The
training distribution is wider than the evaluation one (sizes, speeds, noise up to 20 grey
levels, 0-3 distractors, white distractors, occasional pauses) and starts with a short
curriculum of easy clips.  Validation clips (fixed seeds) pick the best checkpoint; the final
figures come from separate held-out test clips generated with the generator's own noise.
A resume file is written at every validation and every ``checkpoint_every`` steps, so a run
that is killed outright (no signal handler runs) loses at most that many steps.

A run can also be stopped gracefully (SIGTERM, or a first Ctrl-C): it finishes the current
step, validates, tests the best weights on the held-out clips and saves the checkpoint as usual;
its card says ``"stopped_early": true``, and its resume state is kept, so the same command
continues it later.  ``progress`` names a JSON-lines file that gets one
event per step (and per validation, start, stop, test and end) for live curves.
"""

from __future__ import annotations

import json
import math
import pickle
import shlex
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..data.moving_shapes import TASK_LABELS, ShapesOptions, clip_shape, generate
from .backbones import load_backbone_weights
from .base import InputSpec, ModelError, VideoModel, normalise_frames
from .checkpoint import checkpoint_stem, make_card, save_checkpoint
from .priors import check_priors
from .registry import ARCHITECTURES, build_model
from .weights import needed_code, read_state_dict

TASK_KIND = {"sides": "classification", "angle": "regression", "pause": "classification"}
ANGLE_OFFSET, ANGLE_SCALE = 135.0, 135.0  # angle outputs live in [0, 270)
VALIDATION_SEED0 = 2_000_000_000
TEST_SEED0 = 3_000_000_000
RECALIBRATION_STEP0 = 10_000_000  # batch indices past any run's end: post-curriculum clips
TEST_CONDITIONS = {
    # name: (options, share of clips with a pause for non-pause tasks)
    "noise8_distractors2": dict(noise=8.0, distractors=2),
}
ROBUSTNESS_CONDITIONS = {
    # the conditions the app's Moving Shapes sidebar offers, at the ends of their ranges
    "clean": dict(noise=0.0, distractors=0),
    "noise20_distractors3": dict(noise=20.0, distractors=3),
    "noise8_white_distractors2": dict(noise=8.0, distractors=2, white_distractors=True),
    "noise8_distractors2_radius9to10": dict(noise=8.0, distractors=2, radius=(9.0, 10.0)),
    "noise8_distractors2_radius15to16": dict(noise=8.0, distractors=2, radius=(15.0, 16.0)),
    "noise8_distractors2_pause3to5": dict(noise=8.0, distractors=2, pause_length=(3, 5)),
    "noise8_distractors2_pause12to14": dict(noise=8.0, distractors=2, pause_length=(12, 14)),
}


@dataclass
class TrainSettings:
    arch: str
    task: str
    out: str
    steps: int = 4000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    curriculum: float = 0.1  # share of steps on easy clips
    max_noise: float = 20.0
    max_distractors: int = 3  # distractor shapes at most, in training, validation and test clips
    validate_every: int = 250
    checkpoint_every: int = 50  # steps between resume files (also written at every validation)
    validation_clips: int = 200
    test_clips: int = 500
    robustness_clips: int = 200
    threads: int | None = None
    config: dict = field(default_factory=dict)
    backbone_weights: str | None = None  # torchvision frame backbone weights to start from
    init_from: str | None = None  # a checkpoint (zoo name or path) whose matching weights start the run
    init_prefix: str = ""  # only the weights whose names start with this (e.g. "frame_encoder.")
    frames: int | None = None  # clip length and frame size (None: Moving Shapes' 32 frames of 112x112)
    size: int | None = None
    progress: str | None = None  # JSON-lines progress log (appended to)
    device: str = "cpu"  # "cpu", "cuda" or "auto"

    def __post_init__(self) -> None:
        if self.frames is not None and self.frames < 8:
            raise ValueError("training needs clips of at least 8 frames (some training clips pause)")
        if self.size is not None and self.size < 32:
            raise ValueError("training needs frames of at least 32x32 pixels")
        if not 0 <= self.max_distractors <= 3:
            raise ValueError(f"max_distractors takes 0 to 3, got {self.max_distractors}")

    def conditions(self, conditions: dict[str, dict]) -> dict[str, dict]:
        """Held-out conditions with at most ``max_distractors`` distractors (renamed where capped);
        pause lengths that do not fit this run's clips are left out."""
        out = {}
        frames = self.clip_shape()["frames"]
        for name, options in conditions.items():
            if "pause_length" in options and options["pause_length"][1] >= frames - 4:
                continue
            wanted = options.get("distractors", 0)
            if wanted <= self.max_distractors:
                out[name] = options
            else:
                capped = f"distractors{self.max_distractors}"
                out[name.replace(f"distractors{wanted}", capped)] = {**options, "distractors": self.max_distractors}
        return out

    def validation_options(self) -> dict:
        return {"noise": 8.0, "distractors": min(2, self.max_distractors)}

    def clip_shape(self) -> dict:
        """The generator's options for this run's clip length and size (pauses scaled to the length)."""
        return clip_shape(self.frames or ShapesOptions.frames, self.size or ShapesOptions.size)


def input_spec_for(arch: str, s: TrainSettings) -> InputSpec | None:
    """The architecture's default input spec with this run's clip length and size (None: the default)."""
    if s.frames is None and s.size is None:
        return None
    shape = s.clip_shape()
    default = ARCHITECTURES[arch].default_spec if arch in ARCHITECTURES else InputSpec()
    return replace(default, frames=shape["frames"], height=shape["size"], width=shape["size"])


def model_for_task(
    arch: str, task: str, config: dict | None = None, name: str | None = None, input_spec: InputSpec | None = None
) -> VideoModel:
    """A fresh model with the head, labels and output scale the Moving Shapes task needs."""
    if task not in TASK_KIND:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASK_KIND)}")
    config = dict(config or {})
    if task == "angle" and arch in ARCHITECTURES and not arch.startswith(("r3d_", "mc3_", "r2plus1d_")):
        config.setdefault("output_offset", ANGLE_OFFSET)
        config.setdefault("output_scale", ANGLE_SCALE)
    return build_model(
        arch, task=TASK_KIND[task], labels=TASK_LABELS[task], config=config, name=name, input_spec=input_spec
    )


def pause_share(task: str) -> float:
    return 0.5 if task == "pause" else 0.15


def training_options(
    rng: np.random.Generator, task: str, progress: float, s: TrainSettings
) -> tuple[ShapesOptions, float]:
    """Options of one training clip, and its noise level (added later, in torch)."""
    easy = progress < s.curriculum
    if easy:
        distractors = int(rng.integers(0, 2))
        noise = float(rng.uniform(0, 4))
    else:
        distractors = int(rng.choice(4, p=[0.15, 0.2, 0.4, 0.25]))
        noise = float(rng.uniform(0, s.max_noise))
    options = ShapesOptions(
        distractors=min(distractors, s.max_distractors),
        white_distractors=bool(rng.random() < 0.25),
        pause=bool(rng.random() < pause_share(task)),
        radius=(8.0, 18.0),
        speed=(0.8, 3.0),
        **s.clip_shape(),
    )
    return options, noise


def training_batch(task: str, step: int, s: TrainSettings) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch ``step``: clean clips uint8 [B,T,H,W,3], noise std [B], labels [B] (deterministic)."""
    rng = np.random.default_rng([s.seed, step])
    clips, sigmas, labels = [], [], []
    for _ in range(s.batch_size):
        options, noise = training_options(rng, task, step / max(s.steps, 1), s)
        sample = generate(int(rng.integers(0, 1_000_000_000)), options, ground_truth=False)
        clips.append(sample.video)
        sigmas.append(noise)
        labels.append(sample.label(task))
    return torch.from_numpy(np.stack(clips)), torch.tensor(sigmas), torch.tensor(labels)


def add_noise(clips: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """uint8 [B,...] + N(0, sigma_b^2) per pixel, rounded and clipped back to uint8."""
    shape = (-1,) + (1,) * (clips.dim() - 1)
    noisy = clips.float() + torch.randn(clips.shape) * sigma.view(shape)
    return noisy.round_().clamp_(0, 255).to(torch.uint8)


def to_input(model: VideoModel, clips: torch.Tensor) -> torch.Tensor:
    """uint8 [B,T,H,W,3] -> normalised float [B,T,3,H,W] on the model's device."""
    return normalise_frames(clips.to(model.device), model.input_spec)


def recalibrate_batchnorm(model: VideoModel, task: str, s: TrainSettings, batches: int = 20) -> None:
    """Recompute every BatchNorm's running statistics exactly (a cumulative average over
    ``batches`` fixed training batches) with the current weights.  Running averages lag the
    weights while the learning rate is high; without this, a 3D CNN's eval-mode accuracy was
    measured at 30% where the same weights gave 80% once recalibrated."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(batches):
            clean, sigma, _ = training_batch(task, RECALIBRATION_STEP0 + i, s)
            model(to_input(model, add_noise(clean, sigma)))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


def loss_fn(model: VideoModel, output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if model.task == "classification":
        return F.cross_entropy(output, labels.long().to(output.device))
    scale = ANGLE_SCALE
    return F.mse_loss(output.squeeze(-1) / scale, labels.float().to(output.device) / scale)


def held_out_clips(
    task: str, seed0: int, n: int, shape: dict | None = None, **options
) -> tuple[np.ndarray, np.ndarray]:
    """n clips (with the generator's own noise) and labels; non-pause tasks get pauses in a share.
    ``shape``: the clip length and size (``TrainSettings.clip_shape()``; default 32 frames of 112x112)."""
    share = pause_share(task)
    clips, labels = [], []
    for i in range(n):
        pause = (i % 2 == 1) if task == "pause" else (i < round(share * n))
        sample = generate(seed0 + i, ShapesOptions(pause=pause, **{**(shape or {}), **options}), ground_truth=False)
        clips.append(sample.video)
        labels.append(sample.label(task))
    return np.stack(clips), np.asarray(labels)


@torch.inference_mode()
def evaluate(model: VideoModel, clips: np.ndarray, labels: np.ndarray, batch: int = 8) -> dict:
    """Accuracy and mean cross-entropy (classification) or mean absolute error in degrees (regression)."""
    model.eval()
    outputs = []
    for i in range(0, len(clips), batch):
        outputs.append(model(to_input(model, torch.from_numpy(clips[i : i + batch]))).cpu())
    out = torch.cat(outputs)
    if model.task == "classification":
        cross_entropy = F.cross_entropy(out.float(), torch.as_tensor(labels).long()).item()
        accuracy = float((out.argmax(1).numpy() == labels).mean())
        return {"accuracy": accuracy, "cross_entropy": cross_entropy, "clips": len(labels)}
    return {"mae_degrees": float(np.abs(out.squeeze(1).numpy() - labels).mean()), "clips": len(labels)}


def held_out_metrics(model: VideoModel, s: TrainSettings) -> tuple[dict, dict]:
    """The card's held-out figures: {condition: metrics} on the test clips and on the robustness
    conditions (``TEST_CONDITIONS``, ``ROBUSTNESS_CONDITIONS``, at the run's clip shape)."""
    shape = s.clip_shape()
    test = {}
    for cond, opts in s.conditions(TEST_CONDITIONS).items():
        clips, labels = held_out_clips(s.task, TEST_SEED0, s.test_clips, shape, **opts)
        test[cond] = {**evaluate(model, clips, labels), "options": opts}
    robustness = {}
    for cond, opts in s.conditions(ROBUSTNESS_CONDITIONS).items():
        clips, labels = held_out_clips(s.task, TEST_SEED0 + 100_000, s.robustness_clips, shape, **opts)
        robustness[cond] = {**evaluate(model, clips, labels), "options": opts}
    return test, robustness


def retest(stem: str | Path, test_clips: int | None = None, robustness_clips: int | None = None) -> dict:
    """Measure a trained checkpoint's held-out figures again under today's conditions and write
    them into its card (the weights and the training record are kept); returns the card."""
    import datetime

    from .checkpoint import card_config, card_path, load_checkpoint, read_card
    from .priors import architecture_priors

    stem = checkpoint_stem(stem)
    card = read_card(stem)
    if "training" not in card:
        raise ValueError(f"{stem.name}'s card has no training record: it was not trained by this command")
    known = {f for f in TrainSettings.__dataclass_fields__}
    s = TrainSettings(**{k: v for k, v in card["training"]["settings"].items() if k in known})
    if test_clips is not None:
        s.test_clips = test_clips
    if robustness_clips is not None:
        s.robustness_clips = robustness_clips
    model = load_checkpoint(stem)
    test, robustness = held_out_metrics(model, s)
    priors = architecture_priors(card["arch"], card_config(card))
    card.pop("architecture_priors", None)
    if priors:
        card["architecture_priors"] = priors
    card["metrics"] = {
        "test": test,
        "robustness": robustness,
        "test_seeds": [TEST_SEED0, TEST_SEED0 + s.test_clips - 1],
        "pause_share": pause_share(s.task),
        "measured": {"date": datetime.date.today().isoformat(), "torch": torch.__version__, "by": "retest"},
    }
    card_path(stem).write_text(json.dumps(card, indent=2) + "\n")
    return card


def headline(metrics: dict) -> float:
    """Higher is better: minus the mean cross-entropy for a classifier (accuracy reaches 100% on
    200 validation clips long before a model stops improving, and then cannot tell two points
    apart), minus the angle error for the regression; the accuracy for points measured before
    the cross-entropy was."""
    if "cross_entropy" in metrics:
        return -metrics["cross_entropy"]
    return metrics["accuracy"] if "accuracy" in metrics else -metrics["mae_degrees"]


def improves(metrics: dict, best: dict | None) -> bool:
    """Whether a validation point is at least as good as the best so far (a point measured with
    another criterion, from a run resumed across versions, is replaced)."""
    if best is None or ("cross_entropy" in metrics) != ("cross_entropy" in best):
        return True
    return headline(metrics) >= headline(best)


class StopRequest:
    """A graceful stop, asked for by SIGTERM / SIGINT (or by setting ``requested``): the run
    finishes its step, validates, tests and saves.  A second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self.signal: str | None = None

    def handle(self, signum: int, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal = signal.Signals(signum).name


@contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[StopRequest]:
    """While the block runs, SIGTERM and SIGINT set ``stop`` (in the main thread; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, stop.handle)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


class ProgressLog:
    """A JSON-lines log, one event a line: ``{"event": NAME, "time": unix seconds, ...}``, flushed
    at once so another process can follow it.  Events: start, step, validation, stopping,
    testing, done (and interrupted / error).  Without a path it writes nothing."""

    def __init__(self, path: str | Path | None) -> None:
        self.file = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "a", encoding="utf-8")  # closed by close()

    def write(self, event: str, **fields) -> None:
        if self.file is not None:
            self.file.write(json.dumps({"event": event, "time": round(time.time(), 3), **fields}) + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def read_resume_file(path: Path, device: torch.device | str) -> dict:
    """The state a stopped run saved (weights, optimiser, step, ...), read with weights_only=True.
    A file that is not one: one line saying so, without torch's advice to trust the file; an error
    that says nothing of the file (out of memory, no permission) is raised as it is, since the file
    may well be good."""
    try:
        with warnings.catch_warnings():  # torch's warnings about the file say nothing a user can act on here
            warnings.simplefilter("ignore")
            state = torch.load(path, weights_only=True, map_location=device)
    except pickle.UnpicklingError as exc:
        needed = needed_code(exc)
        if needed is not None:
            raise ModelError(
                f"{path.name} is refused: it is not a resume file this command wrote (its pickle needs code to load: "
                f"{needed}) and is not loaded; delete it to start over"
            ) from None
        raise ModelError(
            f"{path.name} is not a resume file this command wrote (UnpicklingError); delete it to start over"
        ) from None
    except RuntimeError as exc:
        if "PytorchStreamReader" not in str(exc):  # not the file's format (out of memory, a device): as raised
            raise
        raise ModelError(
            f"{path.name} is not a resume file this command wrote (a damaged archive); delete it to start over"
        ) from None
    except (EOFError, ValueError, KeyError, IndexError) as exc:  # the file's content; an OSError is raised as it is
        raise ModelError(
            f"{path.name} is not a resume file this command wrote ({type(exc).__name__}); delete it to start over"
        ) from None
    if not isinstance(state, dict) or "net" not in state:
        raise ModelError(f"{path.name} is not a resume file this command wrote; delete it to start over")
    return state


def train(s: TrainSettings, command: str | None = None, log=print, stop: StopRequest | None = None) -> dict:
    """Train, validate, keep the best checkpoint, test it; returns the model card.

    SIGTERM / SIGINT (in the main thread), or ``stop.requested``, end the run gracefully: the
    checkpoint is still validated, tested and saved, and its card says ``"stopped_early": true``."""
    stop = stop or StopRequest()
    progress = ProgressLog(s.progress)
    try:
        with stop_on_signals(stop):
            return _train(s, command, log, stop, progress)
    except KeyboardInterrupt:
        progress.write("interrupted")
        raise
    except Exception as exc:
        progress.write("error", message=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        progress.close()


def init_from_checkpoint(net: torch.nn.Module, source: str | Path, prefix: str = "") -> dict:
    """Copy into ``net`` every weight of checkpoint ``source`` (a path to NAME[.safetensors], else
    a zoo name) whose name starts with ``prefix`` and that ``net`` also has (transfer learning:
    e.g. a trained model's frame encoder under a new temporal head).  Returns {"source",
    "sha256", "tensors": [names copied]}; an error when nothing matches or a name clashes in shape."""
    from .checkpoint import checkpoint_stem
    from .external import file_facts
    from .zoo import checkpoints_dir

    stem = checkpoint_stem(source)
    if not Path(f"{stem}.safetensors").exists() and (checkpoints_dir() / f"{stem.name}.safetensors").exists():
        stem = checkpoints_dir() / stem.name
    weights = Path(f"{stem}.safetensors")
    if not weights.exists():
        raise ValueError(
            f"--init-from: no checkpoint {source} (neither {weights} nor {stem.name} in the zoo, {checkpoints_dir()})"
        )
    theirs = {k: v for k, v in read_state_dict(weights).items() if k.startswith(prefix)}
    own = net.state_dict()
    clash = [k for k in theirs if k in own and tuple(own[k].shape) != tuple(theirs[k].shape)]
    if clash:
        raise ValueError(f"--init-from: {weights.name} has {clash[0]} with another shape than this model's")
    copied = sorted(k for k in theirs if k in own)
    if not copied:
        raise ValueError(f"--init-from: no weight of {weights.name} named {prefix!r}... matches this model's")
    net.load_state_dict({**own, **{k: theirs[k] for k in copied}})
    return {"source": str(source), "sha256": file_facts(weights)["sha256"], "tensors": copied}


def _train(s: TrainSettings, command: str | None, log, stop: StopRequest, progress: ProgressLog) -> dict:
    from tqdm import tqdm

    if s.threads:
        torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    stem = checkpoint_stem(s.out)
    name = stem.name
    check_priors(name, s.arch, s.config)
    from .zoo import resolve_device

    device = resolve_device(s.device)
    model = model_for_task(s.arch, s.task, s.config, name=name, input_spec=input_spec_for(s.arch, s))
    if s.backbone_weights:
        load_backbone_weights(model.net.frame_encoder, s.backbone_weights)
    resume = Path(f"{stem}.resume.pt")
    state = read_resume_file(resume, device) if resume.exists() else None
    start_weights = None
    if state is not None and "init_from" in state:  # what the run started from, as its first session recorded it
        start_weights = json.loads(state["init_from"])
    elif s.init_from:  # (a resume file from before the record: the source as it is now)
        start_weights = init_from_checkpoint(model.net, s.init_from, s.init_prefix)
        log(f"{len(start_weights['tensors'])} tensors start from {s.init_from} ({start_weights['sha256'][:12]})")
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 100) * 0.5 * (1 + math.cos(math.pi * min(i, s.steps) / s.steps))
    )
    start, curve, best, seconds = 0, [], None, 0.0
    if state is not None:
        model.net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        schedule.load_state_dict(state["schedule"])
        start, seconds = int(state["step"]), float(state["seconds"])
        curve, best = json.loads(state["curve"]), json.loads(state["best"])
        log(f"resuming {name} at step {start}")

    shape = s.clip_shape()
    val_clips, val_labels = held_out_clips(
        s.task, VALIDATION_SEED0, s.validation_clips, shape, **s.validation_options()
    )
    progress.write(
        "start",
        name=name,
        arch=s.arch,
        task=s.task,
        steps=s.steps,
        start_step=start,
        batch_size=s.batch_size,
        validate_every=s.validate_every,
    )
    bar = tqdm(range(start, s.steps), initial=start, total=s.steps, desc=name, file=sys.stderr)
    losses: list[float] = []
    t0 = time.time() - seconds
    done = start  # steps completed

    def save_resume() -> None:
        """Write everything the same command needs to continue after ``done`` steps."""
        torch.save(
            {
                "net": model.net.state_dict(),
                "opt": opt.state_dict(),
                "schedule": schedule.state_dict(),
                "step": done,
                "seconds": time.time() - t0,
                "curve": json.dumps(curve),
                "best": json.dumps(best),
                **({"init_from": json.dumps(start_weights)} if start_weights else {}),
            },
            resume,
        )

    def validate() -> None:
        """Validate the weights after ``done`` steps; keep them if they are the best so far."""
        nonlocal best
        recalibrate_batchnorm(model, s.task, s)
        metrics = evaluate(model, val_clips, val_labels)
        point = {
            "step": done,
            "seconds": round(time.time() - t0, 1),
            "loss": float(np.mean(losses[-50:])) if losses else None,
            **metrics,
        }
        curve.append(point)
        if improves(metrics, best):
            best = point
            save_checkpoint(model, stem.with_name(name + "-best"), make_card(model))
        save_resume()
        progress.write("validation", **point)
        log(json.dumps(point))  # after the resume file: an interruption here loses nothing

    for step in bar:
        if stop.requested:
            break
        model.train()
        clean, sigma, labels = training_batch(s.task, step, s)
        x = to_input(model, add_noise(clean, sigma))
        loss = loss_fn(model, model(x), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        schedule.step()
        losses.append(loss.item())
        done = step + 1
        progress.write("step", step=done, loss=losses[-1], seconds=round(time.time() - t0, 2))
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        if done % s.validate_every == 0 or done == s.steps:
            validate()
        elif s.checkpoint_every and done % s.checkpoint_every == 0:
            save_resume()
    bar.close()
    stopped_early = done < s.steps
    if stopped_early:
        progress.write("stopping", step=done, signal=stop.signal)
        log(f"stopped at step {done} of {s.steps}: validating, testing and saving")
        if not curve or curve[-1]["step"] != done:
            validate()
    wall = time.time() - t0

    from .checkpoint import load_checkpoint

    model = load_checkpoint(stem.with_name(name + "-best"), device=device)
    model.info.name = name
    progress.write("testing", step=done, best_step=best["step"])
    test, robustness = held_out_metrics(model, s)
    card = make_card(
        model,
        training={
            "command": command or "python -m xai_core train " + shlex.join(sys.argv[2:]),
            "settings": asdict(s),
            "wall_clock_seconds": round(wall, 1),
            "best_step": best["step"],
            "steps_done": done,
            "stopped_early": stopped_early,
            "validation": {
                "seeds": [VALIDATION_SEED0, VALIDATION_SEED0 + s.validation_clips - 1],
                "options": s.validation_options(),
            },
            "curve": curve,
            "torch": torch.__version__,
            "device": str(model.device) if model.device.type == "cpu" else torch.cuda.get_device_name(model.device),
            **({"init_from": start_weights} if start_weights else {}),
        },
        metrics={
            "test": test,
            "robustness": robustness,
            "test_seeds": [TEST_SEED0, TEST_SEED0 + s.test_clips - 1],
            "pause_share": pause_share(s.task),
        },
    )
    save_checkpoint(model, stem, card)  # save_checkpoint writes CPU tensors
    if stopped_early:  # the resume state stays: the same command continues the run from here
        log(f"{name} stopped early at step {done}; the same command continues it from there")
    else:
        for suffix in ("-best.safetensors", "-best.json"):
            stem.with_name(name + suffix).unlink(missing_ok=True)
        resume.unlink(missing_ok=True)
    progress.write(
        "done",
        name=name,
        out=str(stem),
        steps_done=done,
        stopped_early=stopped_early,
        seconds=round(wall, 1),
        test=test,
        robustness=robustness,
    )
    log(json.dumps({"name": name, "test": test, "robustness": robustness}))
    return card
