"""A batch's results on disk, in its folder ``DIR``:

* ``rows.jsonl``: one JSON line per finished item, appended by the driver alone (flushed and
  synced line by line).  A driver killed mid-line leaves a torn last line, which the next start
  cuts off; an item's row is written once, when it arrives, and a row of an item already there
  is never appended again (a batch started again skips it).
* ``results.parquet``: the same rows as a table (pandas / pyarrow), rewritten from the log when
  a batch ends or stops, and meanwhile every ``PARQUET_EVERY`` seconds or, on a long log, every
  ``PARQUET_SHARE``-th of the time (a rewrite that fails waits for the end, which says why);
* ``batch.json``: what the batch was asked (models, methods, source, suite, parameters).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

ROWS = "rows.jsonl"
PARQUET = "results.parquet"
SPEC = "batch.json"
SUMMARY = "summary.md"
PARQUET_EVERY = 30.0
PARQUET_SHARE = 20  # the rewrites meanwhile take at most about a twentieth of the driver's time


class ResultLog:
    """The rows of the batch in ``folder``: ``done`` (item id -> status) read back at start."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / ROWS
        self.done: dict[str, str] = {}
        self.unreadable = 0  # lines of the log that did not decode (a disk's damage): skipped, counted
        self._repair_and_read()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for the batch)
        self._parquet_at = time.monotonic()
        self._parquet_seconds = 0.0

    def _repair_and_read(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1  # a torn last line (a driver killed while writing it) is cut off
        if keep < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(keep)
        lines = data[:keep].decode("utf-8", errors="replace").splitlines()
        damaged = []
        for line in lines:
            row = _decoded(line)
            if row is None:
                if line.strip():
                    damaged.append(line)
                continue
            self.done[row["item"]] = row["status"]
        if damaged:  # set aside once (rows.jsonl.damaged), the log rewritten without them
            self.unreadable = len(damaged)
            with open(self.path.with_name(ROWS + ".damaged"), "a", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in damaged)
            kept = [line for line in lines if _decoded(line) is not None]
            staging = self.path.with_suffix(".jsonl.tmp")
            staging.write_text("".join(line + "\n" for line in kept), "utf-8")
            os.replace(staging, self.path)

    def append(self, row: dict) -> bool:
        """Write ``row`` unless its item has a row already; whether it was written."""
        if row["item"] in self.done:
            return False
        self._file.write(json.dumps(_jsonable(row), allow_nan=False, default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done[row["item"]] = row["status"]
        if time.monotonic() - self._parquet_at > max(PARQUET_EVERY, PARQUET_SHARE * self._parquet_seconds):
            try:
                self.write_parquet()
            except Exception:  # noqa: BLE001 (the table is written again at the end, which raises)
                self._parquet_at = time.monotonic()
        return True

    def forget_failed(self) -> int:
        """Drop the failed items' rows (``--retry-failed``): they are run again; how many."""
        failed = {k for k, v in self.done.items() if v != "ok"}
        if not failed:
            return 0
        self._file.close()
        kept = [line for line in self.path.read_text("utf-8", errors="replace").splitlines()
                if (row := _decoded(line)) is not None and row["item"] not in failed]  # fmt: skip
        staging = self.path.with_suffix(".jsonl.tmp")
        staging.write_text("".join(line + "\n" for line in kept), "utf-8")
        os.replace(staging, self.path)
        for key in failed:
            del self.done[key]
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        return len(failed)

    def write_parquet(self) -> Path:
        """``results.parquet`` from the log as it is now."""
        started = time.monotonic()
        path = write_parquet(self.folder, read_rows(self.folder))
        self._parquet_at = time.monotonic()
        self._parquet_seconds = self._parquet_at - started
        return path

    def close(self) -> None:
        self._file.close()


def write_parquet(folder: str | Path, table) -> Path:
    """``folder/results.parquet`` from ``table`` (written aside, then renamed into place)."""
    path = Path(folder) / PARQUET
    staging = path.with_name(f".{PARQUET}.{os.getpid()}")
    table.to_parquet(staging, index=False)
    os.replace(staging, path)
    return path


def read_rows(folder: str | Path):
    """The log of the batch in ``folder`` as a pandas DataFrame (one row an item)."""
    import pandas as pd

    path = Path(folder) / ROWS
    rows = []
    if path.exists():
        for line in path.read_text("utf-8", errors="replace").splitlines():
            row = _decoded(line)  # None: a torn last line of a running driver, or damage
            if row is not None:
                rows.append(row)
    table = pd.DataFrame(rows)
    if "item" in table.columns:
        table = table.drop_duplicates("item", keep="first").reset_index(drop=True)
    return table


def read_results(folder: str | Path):
    """A batch's results as a DataFrame: from its log, the truth of a running or stopped batch;
    from ``results.parquet`` when the folder holds only that (a table copied without its log)."""
    import pandas as pd

    if (Path(folder) / ROWS).exists():
        return read_rows(folder)
    return pd.read_parquet(Path(folder) / PARQUET)


def _decoded(line: str) -> dict | None:
    """A log line as its row, or None for a line that is not one (blank, torn or damaged)."""
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) and "item" in row and "status" in row else None


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return _jsonable(value.item())
    return value
