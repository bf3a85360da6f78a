"""``run_batch``: a batch's items listed, those already in its folder skipped, the rest run on an
engine, every row written as it arrives, progress reported, and ``results.parquet`` and
``summary.md`` written at the end (and when the batch is stopped)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .clips import clip_refs
from .config import RunnerConfig
from .faults import NOT_RUN
from .items import SUITES, WorkItem, work_items
from .results import ROWS, SPEC, SUMMARY, ResultLog, read_rows, write_parquet
from .summary import summary_markdown

ENGINES = ("local", "ray")
TABLE_MODULES = ("pandas", "pyarrow.parquet")  # results.parquet's libraries (0.4 s to import)


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

    def items(self, exclude: list[Path] = ()) -> list[WorkItem]:
        """Every work item; ValueError (one line) for what would fail every item, before any work.
        ``exclude``: folders inside a source folder that hold no clips (the batch's own output)."""
        if not self.models or not self.methods:
            raise ValueError("a batch needs at least one model and one method")
        if self.suite is not None and self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; choose one of {', '.join(SUITES)}")
        _check_methods(self.methods, self.suite)
        refs = clip_refs(self.clips, exclude)
        if self.suite is not None:
            _check_suite_clips(self.suite, refs)
        return list(work_items(self.models, refs, self.methods, self.params, self.target, self.suite))

    def to_dict(self) -> dict:
        return asdict(self)


def _check_methods(methods: list[str], suite: str | None) -> None:
    """Unknown method names, and methods the suite cannot score, said before any work (from the
    catalog: the driver imports torch only to check a suite's families)."""
    from ..method_catalog import catalog_entries

    family = {entry["name"]: entry["family"] for entry in catalog_entries()}
    for name in methods:
        if name not in family:
            raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(family))}")
    if suite is not None:
        from ..evaluate.suites import SUITE_FAMILIES

        for name in methods:
            if family[name] not in SUITE_FAMILIES[suite]:
                raise ValueError(f"the {suite} suite scores {' and '.join(SUITE_FAMILIES[suite])} methods; "
                                 f"{name} is a {family[name]} method")  # fmt: skip


def _check_suite_clips(suite: str, refs) -> None:
    """The localisation and temporal suites score against Moving Shapes' ground truth, and the
    temporal one against a pause: clips without them would each fail."""
    from ..video.shapes import parse_spec

    if suite == "sanity":
        return
    for ref in refs:
        if not ref.source.startswith("shapes:"):
            raise ValueError(f"the {suite} suite scores against Moving Shapes' ground truth; {ref.id} is not a "
                             "shapes: clip (the sanity suite scores any clip)")  # fmt: skip
        if suite == "temporal" and not parse_spec(ref.source)[1].get("pause"):
            raise ValueError(f"the temporal suite scores the frames where the shape pauses; {ref.id} does not "
                             "pause: add pause=1 (shapes:FIRST..END?pause=1&noise=8)")  # fmt: skip


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
    """Run the batch ``spec`` into the folder ``out``; returns its counts: ``total``, ``ok`` and
    ``failed`` (rows in the folder), ``skipped`` (done before, not recomputed), ``ran_ok`` and
    ``ran_failed`` (this run), ``seconds`` (this run), ``engine``, ``workers``.

    ``runs``: the run store's folder (default ``OUT/runs``; "" for none).  A batch stopped (Ctrl-C,
    a killed driver) and started again with the same arguments runs only the items without a row;
    ``retry_failed`` runs the failed ones again too.  ``threads``: torch threads of each worker
    (default: this machine's cores over the workers, for workers here; Ray's own, one a task, on a
    cluster given by ``address``)."""
    out = Path(out).resolve()  # workers elsewhere (Ray) are given absolute paths
    if engine == "local":  # its workers' imports (torch: a second or more) while the clips are listed
        from .local import start_worker_server

        start_worker_server()
    spec = resolved(spec)
    store = str(out / "runs") if runs is None else (str(Path(runs).resolve()) if str(runs) else None)
    items = spec.items(exclude=[out, *([Path(store)] if store else [])])
    say = report or (lambda _text: None)
    with BatchLock(out) as lock:
        if not lock.held:
            say(f"{out}: this file system cannot lock the folder; run one xai batch in it at a time")
        _check_same_batch(out, spec, items)
        log = ResultLog(out)
        if log.unreadable:
            say(f"{log.unreadable} damaged line(s) of {out / ROWS} skipped: their items run again")
        dropped = log.forget_failed() if retry_failed else 0
        if dropped:
            say(f"{dropped} failed item(s) will be run again")
        todo = [item for item in items if item.id not in log.done]
        progress = Progress(total=len(items), skipped=len(items) - len(todo))
        try:
            _write_spec(out, spec, items, engine, workers)
            clips = len(items) // max(1, len(set(spec.models)) * len(set(spec.methods)))
            say(f"{len(items)} items ({len(set(spec.models))} model(s) × {clips} clip(s) × {len(set(spec.methods))} "
                f"method(s)); {progress.skipped} done before, {len(todo)} to run on {engine} with {workers} "
                "worker(s)")  # fmt: skip
            here = engine == "local" or not address  # workers on this machine: its cores shared among them
            if threads is None:
                threads = max(1, (os.cpu_count() or 1) // workers) if here else None
            config = RunnerConfig(device=device, runs=store, threads=threads)
            options = {"on_dispatch": on_dispatch} if on_dispatch is not None else {}
            last, given_up = 0.0, set()
            if todo:
                _import_in_background(TABLE_MODULES)  # the end's table, imported while the workers start
                engine_rows = make_engine(engine, config, workers, address, **options).run(todo)
                with contextlib.closing(engine_rows) as rows:  # workers stopped (a Ray cluster shut) on any exit
                    for row in rows:
                        if not log.append(row):
                            continue
                        if row["status"] == "ok":
                            progress.ok += 1
                        else:
                            progress.failed += 1
                            if not str(row.get("error")).startswith(NOT_RUN):
                                say(f"failed: {row['model']} / {row['clip']} / {row['method']}: {row.get('error')}")
                            elif row["model"] not in given_up:  # said once, not for each of its items
                                given_up.add(row["model"])
                                say(f"failed: every item of {row['model']} left: {row['error']}")
                        if time.monotonic() - last > report_every or progress.done == len(todo):
                            say(progress.line())
                            last = time.monotonic()
        finally:
            log.close()
            counts = finish(out, spec, engine, workers)
    counts |= {"skipped": progress.skipped, "ran_ok": progress.ok, "ran_failed": progress.failed,
               "seconds": round(time.monotonic() - progress.started, 2)}  # fmt: skip
    return counts


def _import_in_background(modules: tuple[str, ...]) -> None:
    """Import ``modules`` in a thread: the driver waits on its workers most of the time (Python's
    import lock makes a later import in the main thread wait for this one, never repeat it)."""
    import importlib
    import threading

    def load() -> None:
        for name in modules:
            with contextlib.suppress(Exception):  # an import that fails fails again, and is said, where it is used
                importlib.import_module(name)

    threading.Thread(target=load, name="import-table-libraries", daemon=True).start()


class BatchLock:
    """One driver a batch folder at a time (``DIR/.lock``, an advisory lock the system drops
    when the process ends, however it ends)."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".lock"

    def __enter__(self) -> BatchLock:
        import errno
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a")  # noqa: SIM115 (held for the batch)
        self.held = True
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.close()
            raise ValueError(f"{self.path.parent}: another xai batch is running in this folder") from None
        except OSError as err:  # a network or user-space file system without locks: said, not fatal
            if err.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            self.held = False
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


def resolved(spec: BatchSpec) -> BatchSpec:
    """``spec`` with its source and the models given as paths made absolute (the same files from
    wherever the command runs; workers elsewhere are given them whole)."""
    clips = str(spec.clips)
    if not clips.startswith("shapes:"):
        clips = str(Path(clips).resolve())
    models = [str(Path(m).resolve()) if ":" not in m and (os.sep in m or Path(m).exists()) else m for m in spec.models]
    return replace(spec, clips=clips, models=models)


def clips_fingerprint(items: list[WorkItem]) -> str:
    """A hash of the clips a batch lists (their ids, labels and windows): the same dataset, moved."""
    import hashlib

    seen = dict.fromkeys((i.clip.id, i.clip.label, i.clip.start, i.clip.end) for i in items)
    return hashlib.sha256(json.dumps(list(seen), default=str).encode()).hexdigest()[:16]


def _check_same_batch(out: Path, spec: BatchSpec, items: list[WorkItem]) -> None:
    """A folder holds one batch: started again it must be asked the same (its table and summary
    aggregate its items only); its source may have moved if it lists the same clips."""
    path = out / SPEC
    if not path.exists():
        return
    record = json.loads(path.read_text("utf-8"))
    earlier = record.get("spec", {})
    now = json.loads(json.dumps(spec.to_dict(), default=str))
    if record.get("clips_fingerprint") == clips_fingerprint(items):
        earlier = {**earlier, "clips": now["clips"]}
    changed = [key for key in now if earlier.get(key) != now[key]]
    if changed:
        what = "; ".join(f"{k}: {earlier.get(k)!r} then, {now[k]!r} now" for k in changed)
        raise ValueError(f"{out} holds another batch ({what}); give it another --out, or ask it the same to resume")


def finish(out: Path, spec: BatchSpec, engine: str, workers: int) -> dict:
    """``results.parquet`` and ``summary.md`` from the log; the batch's counts."""
    table = read_rows(out)
    write_parquet(out, table)
    ok = int((table["status"] == "ok").sum()) if len(table) else 0
    counts = {"total": len(table), "ok": ok, "failed": len(table) - ok, "engine": engine, "workers": workers}
    (out / SUMMARY).write_text(summary_markdown(table, asdict(spec), counts), "utf-8")
    return counts


def _write_spec(out: Path, spec: BatchSpec, items: list[WorkItem], engine: str, workers: int) -> None:
    path = out / SPEC
    earlier = json.loads(path.read_text("utf-8")) if path.exists() else {}
    start = {"time": time.time(), "engine": engine, "workers": workers}
    record = {"spec": asdict(spec), "clips_fingerprint": clips_fingerprint(items),
              "starts": [*earlier.get("starts", []), start]}  # fmt: skip
    staging = path.with_name(f".{SPEC}.tmp")
    staging.write_text(json.dumps(record, indent=1, default=str) + "\n", "utf-8")
    os.replace(staging, path)
