"""The run store: finished explanations kept on disk, found again by what determines them.

``RunStore(root)`` keeps one folder per run (``explanation.npz`` + ``explanation.json``) and an
SQLite index (``runs.sqlite``) keyed by a hash of (model, clip content, method, target,
parameters) and the store's ``KEY_FORMAT``.  A run is written into a temporary folder and renamed
into place before its index row is committed, so an interrupted or cancelled computation never
leaves a half-written run behind, and a crash between the two steps leaves at most an unindexed
folder, which ``put`` replaces.
The default root is ``$XAI_RUNS``, else ``runs/`` in the working directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .explanation import Explanation


def default_root() -> Path:
    return Path(os.environ.get("XAI_RUNS", "runs"))


# Part of every key; raised when runs saved before cannot be trusted to be what the same settings give now.
# 2: explanations hand each module's train / eval flag back as found (issue 15).  Before, one explanation
# could leave a user's model in training mode; a run computed on a model shared with the page (one that
# could not be copied) could then run partly with batch statistics and dropout.  Runs of format 1 are
# not served.
KEY_FORMAT = 2


def run_key(model: str, clip_hash: str, method: str, target, params: dict) -> str:
    """A stable key for what determines a run (params in a canonical JSON form) and the store's format."""
    what = [model, clip_hash, method, None if target is None else str(target), params]
    text = json.dumps([f"format {KEY_FORMAT}", *what], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class RunRecord:
    key: str
    model: str
    clip_hash: str
    method: str
    target: str | None
    params: dict
    created: float
    seconds: float
    folder: Path


class RunStore:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.index = self.root / "runs.sqlite"
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS runs (key TEXT PRIMARY KEY, model TEXT, clip_hash TEXT, method TEXT, "
                "target TEXT, params TEXT, created REAL, seconds REAL, folder TEXT)"
            )

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.index, timeout=30)

    def put(self, expl: Explanation, model: str, clip_hash: str, target, params: dict) -> RunRecord:
        """Save ``expl`` under its key (replacing an earlier run of the same key)."""
        key = run_key(model, clip_hash, expl.method, target, params)
        final = self.root / key
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.root))
        try:
            expl.save(staging)
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        record = RunRecord(
            key, model, clip_hash, expl.method, None if target is None else str(target), params, time.time(),
            float(expl.seconds), final,
        )  # fmt: skip
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, model, clip_hash, expl.method, record.target, json.dumps(params, sort_keys=True, default=list),
                 record.created, record.seconds, key),
            )  # fmt: skip
        return record

    def get(self, model: str, clip_hash: str, method: str, target, params: dict) -> Explanation | None:
        """The stored run of these settings, or None."""
        key = run_key(model, clip_hash, method, target, params)
        with self._db() as db:
            row = db.execute("SELECT folder FROM runs WHERE key = ?", (key,)).fetchone()
        if row is None or not (self.root / row[0]).is_dir():
            return None
        return Explanation.load(self.root / row[0])

    def records(self, model: str | None = None, clip_hash: str | None = None) -> list[RunRecord]:
        """Stored runs, newest first (optionally of one model and clip); runs of an earlier
        ``KEY_FORMAT`` are left out."""
        query, args = "SELECT * FROM runs", []
        where = [(c, v) for c, v in (("model", model), ("clip_hash", clip_hash)) if v is not None]
        if where:
            query += " WHERE " + " AND ".join(f"{c} = ?" for c, _ in where)
            args = [v for _, v in where]
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created DESC", args).fetchall()
        records = [
            RunRecord(k, m, c, me, t, json.loads(p), cr, s, self.root / f) for k, m, c, me, t, p, cr, s, f in rows
        ]
        return [
            r
            for r in records
            if r.folder.is_dir() and r.key == run_key(r.model, r.clip_hash, r.method, r.target, r.params)
        ]
