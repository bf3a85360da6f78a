"""``run_batch``: a batch's items listed, those already in its folder skipped, the rest run on an
engine, every row written as it arrives, progress reported, and ``results.parquet`` and
``summary.md`` written at the end (and when the batch is stopped)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .clips import clip_refs
from .config import RunnerConfig
from .items import SUITES, WorkItem, work_items
from .results import SPEC, SUMMARY, ResultLog, read_rows
from .summary import summary_markdown

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BatchSpec:
    """What a batch computes: ``models`` (zoo names or checkpoint paths), ``methods``, ``clips``
    (a folder, a manifest or ``shapes:FIRST..END?...``), ``params`` (method -> parameters),
    ``target`` ("predicted", "label" or as explain takes) and ``suite`` (None or a suite's name)."""

    models: list[str]
    methods: list[str]
    clips: str
    params: dict = field(default_factory=dict)
    target: str = "predicted"
    suite: str | None = None

    def items(self) -> list[WorkItem]:
        if not self.models or not self.methods:
            raise ValueError("a batch needs at least one model and one method")
        if self.suite is not None and self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; choose one of {', '.join(SUITES)}")
        _check_methods(self.methods)
        return list(work_items(self.models, clip_refs(self.clips), self.methods, self.params, self.target, self.suite))


def _check_methods(methods: list[str]) -> None:
    """Unknown method names, said before any work (from the catalog: the driver imports no torch)."""
    from ..method_catalog import catalog_entries

    known = [entry["name"] for entry in catalog_entries()]
    for name in methods:
        if name not in known:
            raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(known))}")


@dataclass
class Progress:
    """Counts of a running batch, and its report line."""

    total: int
    skipped: int
    started: float = field(default_factory=time.monotonic)
    ok: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.ok + self.failed

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed * 60
        left = self.total - self.skipped - self.done
        eta = "" if self.done == 0 else f", about {_duration(left / (self.done / elapsed))} left"
        return (f"[{self.skipped + self.done}/{self.total}] {self.ok} ok, {self.failed} failed this run; "
                f"{rate:.1f} items/min{eta}")  # fmt: skip


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def make_engine(engine: str, config: RunnerConfig, workers: int, address: str | None = None, **options):
    if engine == "local":
        if address:
            raise ValueError("--address is for --engine ray")
        from .local import LocalEngine

        return LocalEngine(config, workers, **options)
    if engine == "ray":
        from .ray_engine import RayEngine

        return RayEngine(config, workers, address)
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def run_batch(
    spec: BatchSpec,
    out: str | Path,
    *,
    engine: str = "local",
    workers: int = 1,
    address: str | None = None,
    device: str = "auto",
    runs: str | Path | None = None,
    retry_failed: bool = False,
    threads: int | None = None,
    report: Callable[[str], None] | None = print,
    report_every: float = 2.0,
    on_dispatch=None,
) -> dict:
    """Run the batch ``spec`` into the folder ``out``; returns its counts: ``total`` items,
    ``skipped`` (done before, not recomputed), ``ok`` and ``failed`` (this run), ``seconds``,
    ``engine``, ``workers``.  ``runs``: the run store's folder (default ``OUT/runs``; "" for none).
    A batch stopped (Ctrl-C, a killed driver) and started again with the same arguments runs only
    the items without a row; ``retry_failed`` runs the failed ones again too.  ``threads``: torch
    threads of each worker (default: this machine's cores over the workers, for workers here;
    Ray's own, one a task, on a cluster given by ``address``)."""
    out = Path(out)
    items = spec.items()
    log = ResultLog(out)
    say = report or (lambda _text: None)
    dropped = log.forget_failed() if retry_failed else 0
    if dropped:
        say(f"{dropped} failed item(s) will be run again")
    todo = [item for item in items if item.id not in log.done]
    progress = Progress(total=len(items), skipped=len(items) - len(todo))
    try:
        _write_spec(out, spec, engine, workers)
        clips = len(items) // max(1, len(spec.models) * len(spec.methods))
        say(f"{len(items)} items ({len(spec.models)} model(s) × {clips} clip(s) × {len(spec.methods)} method(s)); "
            f"{progress.skipped} done before, {len(todo)} to run on {engine} with {workers} worker(s)")  # fmt: skip
        store = str(out / "runs") if runs is None else (str(runs) if str(runs) else None)
        here = engine == "local" or not address  # workers on this machine: its cores shared among them
        if threads is None:
            threads = max(1, (os.cpu_count() or 1) // workers) if here else None
        config = RunnerConfig(device=device, runs=store, threads=threads)
        options = {"on_dispatch": on_dispatch} if on_dispatch is not None else {}
        last = 0.0
        if todo:
            for row in make_engine(engine, config, workers, address, **options).run(todo):
                if not log.append(row):
                    continue
                if row["status"] == "ok":
                    progress.ok += 1
                else:
                    progress.failed += 1
                    say(f"failed: {row['model']} / {row['clip']} / {row['method']}: {row.get('error')}")
                if time.monotonic() - last > report_every or progress.done == len(todo):
                    say(progress.line())
                    last = time.monotonic()
    finally:
        log.close()
        counts = finish(out, spec, engine, workers)
    counts |= {"skipped": progress.skipped, "ran_ok": progress.ok, "ran_failed": progress.failed,
               "seconds": round(time.monotonic() - progress.started, 2)}  # fmt: skip
    return counts


def finish(out: Path, spec: BatchSpec, engine: str, workers: int) -> dict:
    """``results.parquet`` and ``summary.md`` from the log; the batch's counts."""
    from .results import ResultLog as _Log

    log = _Log(out)
    try:
        log.write_parquet()
    finally:
        log.close()
    table = read_rows(out)
    ok = int((table["status"] == "ok").sum()) if len(table) else 0
    counts = {"total": len(table), "ok": ok, "failed": len(table) - ok, "engine": engine, "workers": workers}
    (out / SUMMARY).write_text(summary_markdown(table, asdict(spec), counts), "utf-8")
    return counts


def _write_spec(out: Path, spec: BatchSpec, engine: str, workers: int) -> None:
    path = out / SPEC
    earlier = json.loads(path.read_text("utf-8")) if path.exists() else {}
    record = {"spec": asdict(spec), "starts": [*earlier.get("starts", []),
              {"time": time.time(), "engine": engine, "workers": workers}]}  # fmt: skip
    staging = path.with_name(f".{SPEC}.tmp")
    staging.write_text(json.dumps(record, indent=1, default=str) + "\n", "utf-8")
    os.replace(staging, path)
