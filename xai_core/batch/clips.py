"""A batch's SOURCE as references to clips: the driver lists what to read, the workers read it.

* a folder: every video file and ``.npy`` / ``.npz`` array in it and its subfolders, by path;
* a CSV or Parquet manifest: a ``path`` column (relative to the manifest's folder, or absolute),
  and optional ``label`` (the true class, by name or index), ``start`` and ``end`` (seconds);
* a Moving Shapes range: ``shapes:FIRST..END[?k=v&...]``, the seeds FIRST to END-1 with the same
  generator options for each (``noise``, ``distractors``, ``pause``, ...).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

ARRAY_SUFFIXES = frozenset({".npy", ".npz"})
MANIFEST_SUFFIXES = frozenset({".csv", ".parquet"})
SHAPES_RANGE = re.compile(r"^shapes:(\d+)\.\.(\d+)(\?.*)?$")
MAX_SHAPES = 1_000_000


class SourceError(ValueError):
    """A batch source that cannot be listed (one line, naming it)."""


@dataclass(frozen=True)
class ClipRef:
    """One clip of a batch: ``id`` (unique in the batch: the path as given, with its window),
    ``source`` (what ``load_video`` reads: a path or ``shapes:SEED?...``), the manifest's
    ``label`` (text, or None), and ``start`` / ``end`` in seconds (None: the whole source)."""

    id: str
    source: str
    label: str | None = None
    start: float | None = None
    end: float | None = None

    @property
    def window(self) -> tuple[float | None, float | None] | None:
        return None if self.start is None and self.end is None else (self.start, self.end)

    def to_dict(self) -> dict:
        return asdict(self)


def clip_refs(source: str, exclude: list[Path] = ()) -> list[ClipRef]:
    """The clips of ``source`` (see the module docstring), in a stable order; SourceError when
    it names nothing readable or nothing at all.  ``exclude``: folders whose files are never clips
    (a batch's own output inside the source folder); hidden files and folders are left out too."""
    text = str(source)
    if text.startswith("shapes:"):
        return _shapes_range(text)
    path = Path(text)
    if not path.exists():
        raise SourceError(f"{text}: no such folder or manifest")
    if path.is_dir():
        return _folder(path, [Path(e).resolve() for e in exclude])
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return _manifest(path)
    raise SourceError(
        f"{text}: a batch reads a folder of videos, a .csv / .parquet manifest or shapes:FIRST..END, not a "
        f"{path.suffix or 'file without a suffix'}"
    )


def _shapes_range(text: str) -> list[ClipRef]:
    match = SHAPES_RANGE.match(text)
    if match is None:
        raise SourceError(f"{text}: a Moving Shapes range is shapes:FIRST..END[?options], e.g. shapes:0..64?noise=8")
    first, end, query = int(match[1]), int(match[2]), match[3] or ""
    if end <= first:
        raise SourceError(f"{text}: the range is empty (END is excluded: shapes:{first}..{first + 1} is one clip)")
    if end - first > MAX_SHAPES:
        raise SourceError(f"{text}: {end - first} clips; at most {MAX_SHAPES} in one batch")
    from ..video.shapes import parse_spec  # the video package imports PyAV and OpenCV: once a source is read

    try:  # options that do not parse are said once, before any work
        parse_spec(f"shapes:{first}{query}")
    except ValueError as err:
        raise SourceError(f"{text}: {str(err).split(': ', 1)[-1]}") from None
    return [ClipRef(f"shapes:{seed}{query}", f"shapes:{seed}{query}") for seed in range(first, end)]


def _folder(path: Path, exclude: list[Path]) -> list[ClipRef]:
    from ..video import VIDEO_SUFFIXES

    readable = VIDEO_SUFFIXES | ARRAY_SUFFIXES

    def wanted(p: Path) -> bool:
        relative = p.relative_to(path).parts
        if any(part.startswith(".") for part in relative) or not p.is_file() or p.suffix.lower() not in readable:
            return False
        return not any(p.resolve().is_relative_to(e) for e in exclude)

    files = sorted(p for p in path.rglob("*") if wanted(p))
    if not files:
        raise SourceError(f"{path}: no video files or arrays in this folder ({', '.join(sorted(readable))})")
    return [ClipRef(p.relative_to(path).as_posix(), str(p.resolve())) for p in files]


def _manifest(path: Path) -> list[ClipRef]:
    import pandas as pd

    try:
        table = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as err:  # pandas raises many kinds for a file that is not a table
        raise SourceError(f"{path}: not a readable {path.suffix} table ({' '.join(str(err).split())[:200]})") from None
    if "path" not in table.columns:
        raise SourceError(f"{path}: a manifest needs a 'path' column (and may have label, start, end); "
                          f"it has {', '.join(map(str, table.columns)) or 'none'}")  # fmt: skip
    refs, seen = [], set()
    for number, row in enumerate(table.to_dict("records"), start=2 if path.suffix.lower() == ".csv" else 1):
        where = f"{path} row {number}"
        given = row["path"]
        if not isinstance(given, str) or not given.strip():
            raise SourceError(f"{where}: the path is empty")
        start, end = _seconds(row.get("start"), where, "start"), _seconds(row.get("end"), where, "end")
        if start is not None and end is not None and end <= start:
            raise SourceError(f"{where}: end ({end:g} s) is not after start ({start:g} s)")
        file = Path(given) if Path(given).is_absolute() else (path.parent / given).resolve()
        label = _label(row.get("label"))
        ref_id = given + ("" if start is None and end is None else f"@{_text(start)}-{_text(end)}")
        if ref_id in seen:
            raise SourceError(f"{where}: {ref_id} is listed twice")
        seen.add(ref_id)
        refs.append(ClipRef(ref_id, given if given.startswith("shapes:") else str(file), label, start, end))
    if not refs:
        raise SourceError(f"{path}: the manifest lists no clips")
    return refs


def _seconds(value, where: str, name: str) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise SourceError(f"{where}: {name} must be seconds, got {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise SourceError(f"{where}: {name} must be seconds >= 0, got {value!r}")
    return seconds


def _label(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() or None


def _text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
