"""Training in the background: ``python -m xai_core train`` as a subprocess, followed through
the JSON-lines progress log it writes (``--progress``), stopped gracefully with SIGTERM.

No Streamlit here: the Models page keeps a ``TrainingRun`` in its session and polls
``run.progress()``; a notebook or a script can do the same.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_FRAMES, DEFAULT_SIZE = 32, 112  # Moving Shapes' own clip


@dataclass(frozen=True)
class RunRequest:
    """What the user asked to train; ``frames`` / ``size`` None: Moving Shapes' 32 frames of 112x112."""

    arch: str
    task: str
    name: str
    steps: int = 500
    batch_size: int = 8
    frames: int | None = None
    size: int | None = None
    validate_every: int = 100
    validation_clips: int = 50
    test_clips: int = 100
    robustness_clips: int = 50
    threads: int = 1

    def command(self, out: str | Path, progress: str | Path) -> list[str]:
        """The ``python -m xai_core train`` command line (a list for subprocess)."""
        cmd = [
            sys.executable, "-m", "xai_core", "train", "--arch", self.arch, "--task", self.task,
            "--out", str(out), "--steps", str(self.steps), "--batch-size", str(self.batch_size),
            "--validate-every", str(self.validate_every), "--validation-clips", str(self.validation_clips),
            "--test-clips", str(self.test_clips), "--robustness-clips", str(self.robustness_clips),
            "--threads", str(self.threads), "--progress", str(progress),
        ]  # fmt: skip
        if self.frames is not None:
            cmd += ["--frames", str(self.frames)]
        if self.size is not None:
            cmd += ["--size", str(self.size)]
        return cmd


def check_name(name: str, folder: str | Path) -> str | None:
    """Why ``name`` cannot be a new checkpoint in ``folder`` (None: it can)."""
    folder = Path(folder)
    if not NAME_PATTERN.match(name or ""):
        return (
            f"{name!r} is not a usable model name: use up to 64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    if name.endswith("-best"):
        return "a model name cannot end in '-best' (training keeps its best weights under that name)"
    for suffix in (".safetensors", ".json", ".resume.pt"):
        if (folder / f"{name}{suffix}").exists():
            return f"{folder / (name + suffix)} exists already: choose another name"
    return None


@dataclass
class Progress:
    """What a progress log says so far.  ``phase``: starting, training, stopping, testing, done,
    failed or interrupted.  ``steps``/``losses``: one training-loss point per step of this run;
    ``validation``: the validation points ({"step", "seconds", "loss", metric, "clips"})."""

    phase: str = "starting"
    total_steps: int = 0
    start_step: int = 0
    step: int = 0
    seconds: float = 0.0
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    validation: list[dict] = field(default_factory=list)
    step_seconds: float | None = None  # recent seconds per training step
    validation_seconds: float | None = None  # seconds per validation
    validate_every: int | None = None
    result: dict | None = None  # the "done" event
    error: str | None = None

    @property
    def metric(self) -> str | None:
        """'accuracy' or 'mae_degrees' (None before the first validation)."""
        for key in ("accuracy", "mae_degrees"):
            if self.validation and key in self.validation[-1]:
                return key
        return None

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    def eta_seconds(self) -> float | None:
        """Seconds of training left: the remaining steps at the recent pace plus the remaining
        validations at the measured cost of one (the held-out test afterwards is not included)."""
        if self.phase != "training" or self.step_seconds is None:
            return None
        left = max(0, self.total_steps - self.step)
        eta = left * self.step_seconds
        if self.validation_seconds is not None and self.validate_every:
            every, total = self.validate_every, self.total_steps
            validations = total // every - self.step // every + (1 if total % every else 0)  # the last step's too
            eta += validations * self.validation_seconds
        return eta


def read_progress(path: str | Path, window: int = 50) -> Progress:
    """Parse a JSON-lines progress log (as written by ``training.ProgressLog``); a missing file
    or a half-written last line is fine.  Only the events after the last "start" count (a
    resumed run appends to the same file)."""
    path = Path(path)
    events = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the line being written
    starts = [i for i, e in enumerate(events) if e.get("event") == "start"]
    if not starts:
        return Progress()
    events = events[starts[-1] :]
    head = events[0]
    p = Progress(
        phase="training",
        total_steps=int(head["steps"]),
        start_step=int(head.get("start_step", 0)),
        validate_every=head.get("validate_every"),
    )
    p.step = p.start_step
    step_times: list[float] = []
    last_time = head["time"]
    validation_costs: list[float] = []
    for e in events[1:]:
        kind = e.get("event")
        if kind == "step":
            p.steps.append(int(e["step"]))
            p.losses.append(float(e["loss"]))
            p.step, p.seconds = int(e["step"]), float(e["seconds"])
            step_times.append(float(e["time"]))
        elif kind == "validation":
            p.validation.append({k: v for k, v in e.items() if k not in ("event", "time")})
            if p.steps and p.steps[-1] == e["step"]:
                validation_costs.append(float(e["time"]) - last_time)
        elif kind == "stopping":
            p.phase = "stopping"
        elif kind == "testing":
            p.phase = "testing"
        elif kind == "done":
            p.phase, p.result = "done", {k: v for k, v in e.items() if k not in ("event", "time")}
        elif kind == "error":
            p.phase, p.error = "failed", e.get("message", "training failed")
        elif kind == "interrupted":
            p.phase = "interrupted"
        last_time = float(e.get("time", last_time))
    recent = step_times[-window:]
    gaps = sorted(b - a for a, b in zip(recent, recent[1:], strict=False))
    if gaps:  # the median gap: the pauses for validation do not count
        p.step_seconds = gaps[len(gaps) // 2]
    if validation_costs:
        p.validation_seconds = sum(validation_costs) / len(validation_costs)
    return p


class TrainingRun:
    """One background training process and the files it writes.

    ``workdir`` holds the progress log and the process's output; the checkpoint goes to
    ``checkpoints/NAME`` (.safetensors + .json) when the run ends, stopped or not."""

    def __init__(self, request: RunRequest, process: subprocess.Popen, out: Path, workdir: Path) -> None:
        self.request = request
        self.process = process
        self.out = out
        self.workdir = workdir
        self.started = time.time()
        self.stop_requested = False
        self.announced = False  # the page has shown the end once (and refreshed the zoo)

    @property
    def progress_path(self) -> Path:
        return self.workdir / "progress.jsonl"

    @property
    def log_path(self) -> Path:
        return self.workdir / "output.log"

    @classmethod
    def start(cls, request: RunRequest, checkpoints: str | Path, workdir: str | Path) -> TrainingRun:
        """Start ``python -m xai_core train`` for ``request`` in the background; raises
        ValueError when the name cannot be used."""
        checkpoints, workdir = Path(checkpoints), Path(workdir)
        problem = check_name(request.name, checkpoints)
        if problem:
            raise ValueError(problem)
        checkpoints.mkdir(parents=True, exist_ok=True)
        workdir.mkdir(parents=True, exist_ok=True)
        out = checkpoints / request.name
        progress = workdir / "progress.jsonl"
        progress.unlink(missing_ok=True)
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        env["OMP_NUM_THREADS"] = str(request.threads)
        with open(workdir / "output.log", "wb") as log:
            process = subprocess.Popen(
                request.command(out, progress), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir
            )
        return cls(request, process, out, workdir)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def stop(self) -> None:
        """Ask the run to stop: it finishes its step, validates, tests and saves (SIGTERM)."""
        if self.running and not self.stop_requested:
            self.stop_requested = True
            self.process.send_signal(signal.SIGTERM)

    def kill(self, timeout: float = 10.0) -> None:
        """End the process now (nothing is saved); used when a session is torn down."""
        if self.running:
            self.process.kill()
        self.process.wait(timeout=timeout)

    def progress(self) -> Progress:
        return read_progress(self.progress_path)

    def saved(self) -> bool:
        """The checkpoint (weights and card) exists."""
        return Path(f"{self.out}.safetensors").exists() and Path(f"{self.out}.json").exists()

    def failure(self) -> str | None:
        """Why the finished process failed (its last 'error:' line, or its exit status); None if it did not."""
        code = self.returncode
        if code is None or (code == 0 and self.saved()):
            return None
        progress = self.progress()
        if progress.error:
            return progress.error
        if code < 0 and not progress.steps:
            return f"the run was stopped before its first step (signal {signal.Signals(-code).name}): nothing was saved"
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        said = [line for line in lines if line.startswith("error:")]
        return said[-1][len("error:") :].strip() if said else f"the training process exited with status {code}"


def estimate_seconds(cards: list[dict], request: RunRequest) -> tuple[float, str] | None:
    """A rough duration for ``request`` from the training time of a model of the same
    architecture in ``cards`` (seconds per clip-step, scaled by the clip's pixel count), and
    which model it comes from; None when no such card has a timing."""
    pixels = (request.frames or DEFAULT_FRAMES) * (request.size or DEFAULT_SIZE) ** 2
    best = None
    for card in cards:
        training = card.get("training") or {}
        settings = training.get("settings") or {}
        wall = training.get("wall_clock_seconds")
        steps = training.get("steps_done") or settings.get("steps")
        if card.get("arch") != request.arch or not wall or not steps or not settings.get("batch_size"):
            continue
        their_pixels = (settings.get("frames") or DEFAULT_FRAMES) * (settings.get("size") or DEFAULT_SIZE) ** 2
        per_clip_pixel = wall / (steps * settings["batch_size"] * their_pixels)
        if best is None or abs(their_pixels - pixels) < best[2]:
            best = (per_clip_pixel, card.get("name", "?"), abs(their_pixels - pixels))
    if best is None:
        return None
    return best[0] * request.steps * request.batch_size * pixels, best[1]
