"""The run store: finished results kept on disk, found again by what determines them.

``RunStore(root)`` keeps one folder per run and an SQLite index (``runs.sqlite``, write-ahead
log) keyed by ``RunRequest.key``: a hash of the model's name and weights, the clip's content,
the method, target, parameters, device and the store's ``KEY_FORMAT``.  A run's folder holds
``explanation.npz`` + ``explanation.json``, ``run.json`` (its index row) and, when the clip's
frames were given, ``clip.npz`` (frames uint8 [T,H,W,3], padded bool [T], frame indices), so a
run can be drawn and exported without the video file.

A run is written into a hidden staging folder and renamed into place before its index row is
committed; a delete removes the row before the folder.  A process killed at any moment leaves a
readable store with no half run listed: at most an unindexed folder, which the next ``put`` of
that key replaces (staging folders older than an hour are swept when a store opens).
The default root is ``$XAI_RUNS``, else ``runs/`` in the working directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..explanation import Explanation, prediction_text

# Part of every key; raised when runs saved before cannot be trusted to be what the same settings give now.
# 2: explanations hand each module's train / eval flag back as found (issue 15): runs of format 1 may
#    have been computed partly in training mode.
# 3: the key names the model's weights (a content hash) and the device instead of the app's cache
#    name of the model, so a run of other weights under the same name is never served.
KEY_FORMAT = 3
INDEX = "runs.sqlite"
RUN_JSON = "run.json"
DOCUMENT_JSON = "document.json"  # a run that is not one explanation: an evaluation's result
CLIP_NPZ = "clip.npz"
SETUP_SECONDS = 60.0  # how long a store waits for other processes setting up its new index
STAGING_PREFIX = "."
STAGING_NAME = re.compile(r"^\.[0-9a-f]{24}-")  # a run's staging or set-aside folder: "." + its key + "-..."
COLUMNS = (
    "key", "kind", "model", "weights", "clip_hash", "source", "method", "target", "params", "prediction",
    "seconds", "device", "created", "folder", "versions",
)  # fmt: skip


def save_npz_fast(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` at zlib's fastest level (1): a clip's uint8 frames shrink about as
    much (half) in a fifth of the time of the default level."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


class RunNotFound(ValueError):
    """No run (or more than one) answers a key or key prefix."""


def default_root() -> Path:
    return Path(os.environ.get("XAI_RUNS", "runs"))


@dataclass(frozen=True)
class RunRequest:
    """What determines a run: model name, weights hash (``identity.weights_hash``), clip content
    hash, method, target as asked (None: the predicted class / the output), the method's resolved
    parameters and the device."""

    model: str
    weights: str
    clip_hash: str
    method: str
    target: str | None
    params: dict
    device: str

    @property
    def key(self) -> str:
        what = [self.model, self.weights, self.clip_hash, self.method, self.target, self.params, self.device]
        text = json.dumps([f"format {KEY_FORMAT}", *what], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def request(model: str, weights: str, clip_hash: str, method: str, target, params: dict, device: str) -> RunRequest:
    """A ``RunRequest`` with the target as text (a class index and its digits are the same request)."""
    return RunRequest(model, weights, clip_hash, method, None if target is None else str(target), params, device)


@dataclass(frozen=True)
class RunRecord:
    """A saved run's index row: its request, the run's ``kind`` ("explanation"), the clip's
    ``source``, the prediction (text), seconds, when it was saved (``created``, epoch seconds),
    its folder and the versions that computed it."""

    key: str
    kind: str
    model: str
    weights: str
    clip_hash: str
    source: str
    method: str
    target: str | None
    params: dict
    prediction: str
    seconds: float
    device: str
    created: float
    folder: Path
    versions: dict = field(default_factory=dict)

    @property
    def request(self) -> RunRequest:
        return RunRequest(self.model, self.weights, self.clip_hash, self.method, self.target, self.params, self.device)

    def to_json(self) -> dict:
        return {**asdict(self), "folder": str(self.folder)}

    def saved_text(self) -> str:
        """'run 3f2a… saved 2026-12-06 23:41'"""
        return f"run {self.key[:10]} saved {time.strftime('%Y-%m-%d %H:%M', time.localtime(self.created))}"


class RunStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.index = self.root / INDEX
        deadline = time.monotonic() + SETUP_SECONDS
        while True:
            try:
                self._set_up()
                break
            except sqlite3.OperationalError as err:
                # Switching a new index to write-ahead logging takes it whole, and SQLite answers
                # "locked" at once rather than waiting when several processes open a new store
                # together (a batch's workers): wait and try again.
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05 + 0.05 * random.random())
        self._sweep()

    def _set_up(self) -> None:
        with self._db() as db:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":  # kept in the file once set
                db.execute("PRAGMA journal_mode=WAL")
            present = [row[1] for row in db.execute("PRAGMA table_info(runs)")]
            if present and tuple(present) != COLUMNS:  # an earlier format's index: none of its runs is served
                db.execute("DROP TABLE runs")
            db.execute(f"CREATE TABLE IF NOT EXISTS runs ({', '.join(COLUMNS)}, PRIMARY KEY (key))")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.index, timeout=30)

    def _sweep(self, older_than: float = 3600.0) -> None:
        """Remove staging folders left by processes killed more than ``older_than`` seconds ago."""
        now = time.time()
        for path in self.root.glob(f"{STAGING_PREFIX}*-*"):
            if not STAGING_NAME.match(path.name):  # only the store's own: never another hidden folder
                continue
            try:
                if path.is_dir() and now - path.stat().st_mtime > older_than:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                continue

    def put(
        self,
        expl: Explanation,
        req: RunRequest,
        kind: str = "explanation",
        frames: np.ndarray | None = None,
        padded: np.ndarray | None = None,
    ) -> RunRecord:
        """Save ``expl`` under ``req``'s key (replacing an earlier run of the key), with the clip's
        display ``frames`` uint8 [T,H,W,3] and ``padded`` bool [T] when given."""
        if req.method != expl.method:
            raise ValueError(f"the request is for {req.method}, the explanation is of {expl.method}")
        key = req.key
        meta = expl.meta or {}
        record = RunRecord(
            key=key, kind=kind, model=req.model, weights=req.weights, clip_hash=req.clip_hash,
            source=str(meta.get("source", "")), method=req.method, target=req.target, params=req.params,
            prediction=prediction_text(expl.prediction) if expl.prediction else "", seconds=float(expl.seconds),
            device=req.device, created=time.time(), folder=self.root / key,
            versions={k: meta[k] for k in ("xai_core", "torch", "python") if k in meta},
        )  # fmt: skip

        def write(staging: Path) -> None:
            expl.save(staging)
            if frames is not None:
                count = len(frames)
                save_npz_fast(
                    staging / CLIP_NPZ,
                    frames=np.asarray(frames, dtype=np.uint8),
                    padded=np.zeros(count, bool) if padded is None else np.asarray(padded, bool),
                    frame_indices=np.asarray(expl.frame_indices or range(count), dtype=np.int64),
                )

        return self._save(record, write)

    def _save(self, record: RunRecord, write: Callable[[Path], None]) -> RunRecord:
        """Write a run whole: ``write(staging)`` fills a hidden staging folder, ``run.json`` goes in
        last, the folder is swapped into place, then the index row is committed."""
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{record.key}-", dir=self.root))
        try:
            write(staging)
            (staging / RUN_JSON).write_text(json.dumps(record.to_json(), indent=1, default=str) + "\n")
            self._swap_in(staging, record.folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        with self._db() as db:
            db.execute(f"INSERT OR REPLACE INTO runs VALUES ({', '.join('?' * len(COLUMNS))})", _row(record))
        return record

    def _swap_in(self, staging: Path, final: Path) -> None:
        """Put the whole folder ``staging`` at ``final`` by renames only: an earlier run there is
        first renamed aside (a hidden staging name) and removed after, so no moment shows a half
        folder at ``final``; when another process puts the same key at the same moment, the
        first one in stays."""
        old = final.with_name(f"{STAGING_PREFIX}{final.name}-old-{os.getpid()}-{time.monotonic_ns()}")
        try:
            os.replace(final, old)
        except FileNotFoundError:
            old = None
        try:
            os.replace(staging, final)
        except OSError:  # another writer's run of this key came in between: theirs is as good
            pass
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def put_document(self, document: dict, req: RunRequest, kind: str, seconds: float = 0.0, summary: str = "",
                     source: str = "", versions: dict | None = None) -> RunRecord:  # fmt: skip
        """Save a result that is not one explanation (an evaluation suite's, a model's quality) as
        ``document.json`` under ``req``'s key, of ``kind`` ("evaluation", "model_quality"), with
        its ``summary`` in the prediction column; written and indexed as ``put`` writes runs."""
        key = req.key
        record = RunRecord(
            key=key, kind=kind, model=req.model, weights=req.weights, clip_hash=req.clip_hash, source=source,
            method=req.method, target=req.target, params=req.params, prediction=summary, seconds=float(seconds),
            device=req.device, created=time.time(), folder=self.root / key, versions=dict(versions or {}),
        )  # fmt: skip
        text = json.dumps(document, indent=1, default=_plain) + "\n"
        return self._save(record, lambda staging: (staging / DOCUMENT_JSON).write_text(text))

    def get_document(self, req: RunRequest) -> tuple[RunRecord, dict] | None:
        """The saved document of this request and its record, or None."""
        record = self.find(req.key)
        if record is None or not (record.folder / DOCUMENT_JSON).is_file():
            return None
        return record, json.loads((record.folder / DOCUMENT_JSON).read_text())

    def get(self, req: RunRequest) -> Explanation | None:
        """The saved run of this request (``meta["run"]``: its key, ``meta["saved_at"]``: when), or None."""
        record = self.find(req.key)
        return None if record is None else served(record)

    def find(self, key: str) -> RunRecord | None:
        """The run of exactly this key, or None (not saved, its folder gone, or an earlier format's)."""
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE key = ?", (key,)).fetchone()
        record = None if row is None else self._record(row)
        if record is None or not _whole(record):
            return None
        return record

    def record(self, key: str) -> RunRecord:
        """The run whose key is ``key`` or starts with it (RunNotFound when none or several do)."""
        if not key or any(c not in "0123456789abcdef" for c in key):
            raise RunNotFound(f"{key!r} is not a run key (hexadecimal digits, as `xai runs list` shows)")
        exact = self.find(key)
        if exact is not None:
            return exact
        found = [r for r in self.records() if r.key.startswith(key)]
        if not found:
            raise RunNotFound(f"no run {key} in {self.root}")
        if len(found) > 1:
            raise RunNotFound(f"{len(found)} runs start with {key}: give more of the key")
        return found[0]

    def load(self, key: str) -> Explanation:
        """The explanation of the run ``key`` (or a unique prefix)."""
        return served(self.record(key))

    def clip_frames(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(frames uint8 [T,H,W,3], padded bool [T], frame indices [T]) kept with the run, or None."""
        path = self.record(key).folder / CLIP_NPZ
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as npz:
            return npz["frames"], npz["padded"], npz["frame_indices"]

    def records(
        self,
        model: str | None = None,
        clip_hash: str | None = None,
        method: str | None = None,
        kind: str | None = None,
    ) -> list[RunRecord]:
        """Saved runs, newest first, optionally filtered; rows whose folder is gone or whose key is
        not this format's are left out."""
        query, args = "SELECT * FROM runs", []
        where = [(c, v) for c, v in (("model", model), ("clip_hash", clip_hash), ("method", method), ("kind", kind))]
        where = [(c, v) for c, v in where if v is not None]
        if where:
            query += " WHERE " + " AND ".join(f"{c} = ?" for c, _ in where)
            args = [v for _, v in where]
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created DESC", args).fetchall()
        return [r for r in (self._record(row) for row in rows) if _whole(r)]

    def delete(self, key: str) -> RunRecord:
        """Delete the run ``key`` (or a unique prefix): its index row first, then its folder."""
        record = self.record(key)
        with self._db() as db:
            db.execute("DELETE FROM runs WHERE key = ?", (record.key,))
        shutil.rmtree(record.folder, ignore_errors=True)
        return record

    def _record(self, row: tuple) -> RunRecord:
        values = dict(zip(COLUMNS, row, strict=True))
        values["params"] = json.loads(values["params"])
        values["versions"] = json.loads(values["versions"] or "{}")
        values["folder"] = self.root / values["folder"]
        return RunRecord(**values)


def _whole(record: RunRecord) -> bool:
    """A listed run: its key is this format's key of its settings and its folder holds the run
    (its record is written last, inside the staging folder, so its presence means whole)."""
    return record.key == record.request.key and (record.folder / RUN_JSON).is_file()


def _row(record: RunRecord) -> tuple:
    values = {
        **asdict(record),
        "params": json.dumps(record.params, sort_keys=True, default=list),
        "versions": json.dumps(record.versions, sort_keys=True),
        "folder": record.key,
    }
    return tuple(values[c] for c in COLUMNS)


def served(record: RunRecord) -> Explanation:
    """The explanation of a saved run, its ``meta`` naming the run (``run``) and when it was saved (``saved_at``)."""
    expl = Explanation.load(record.folder)
    expl.meta = {**expl.meta, "run": record.key, "saved_at": record.created}
    return expl


def _plain(value):
    """JSON for numpy scalars and arrays (NaN stays NaN: Python's json reads it back)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
