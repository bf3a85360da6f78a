"""A saved run as one zip: its arrays and record, the overlay as a video, the frame curve as CSV
and a film strip (PNG), the last two where the run has them."""

from __future__ import annotations

import csv
import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .. import display
from ..explanation import JSON_NAME, NPZ_NAME
from ..render import styled_overlays, timeline_curves
from ..runs.store import RUN_JSON, RunStore
from ..video import write_video
from .strip import film_strip, save_figure


def curve_csv(curves: dict[str, np.ndarray], frame_indices, padded) -> str:
    """frame, video_frame, padded, then one column per curve."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["frame", "video_frame", "padded", *curves])
    for t in range(len(next(iter(curves.values())))):
        writer.writerow([t, int(frame_indices[t]), int(bool(padded[t])), *(f"{c[t]:.9g}" for c in curves.values())])
    return out.getvalue()


def export_run(
    store: RunStore, key: str, out: str | Path, style: display.Style | None = None, fps: float = 8.0
) -> Path:
    """Write the run ``key`` (or a unique prefix) of ``store`` to the zip ``out``: explanation.npz,
    explanation.json and run.json always; with the clip's frames kept, overlay.mp4 (a spatial
    map, drawn in ``style``) and strip.png; curve.csv when the run has a frame curve.  Returns the
    zip's path (written whole or not at all)."""
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise ValueError(f"a run is exported as a .zip, not {out.name!r}")
    record = store.record(key)
    expl = store.load(record.key)
    kept = store.clip_frames(record.key)
    style = style or display.Style()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        partial = out.with_name(f".{out.name}.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in (NPZ_NAME, JSON_NAME, RUN_JSON):
                archive.write(record.folder / name, name)
            count = expl.num_frames
            frame_indices = kept[2] if kept is not None else np.arange(count)
            padded = kept[1] if kept is not None else np.zeros(count, bool)
            curves = timeline_curves({expl.method: expl}) if expl.temporal is not None else {}
            if curves:
                archive.writestr("curve.csv", curve_csv(curves, frame_indices, padded))
            if kept is not None:
                frames = kept[0]
                if expl.spatial is not None:
                    video = write_video(styled_overlays(frames, expl.spatial, style, padded=padded),
                                        scratch / "overlay.mp4", fps=fps)  # fmt: skip
                    archive.write(video, "overlay.mp4")
                maps = {expl.method: expl.spatial} if expl.spatial is not None else {}
                if maps or curves:
                    figure = film_strip(frames, maps, curves, style=style, padded=padded, frame_indices=frame_indices,
                                        title=f"{record.model}: {record.method} · {record.prediction}")  # fmt: skip
                    archive.write(save_figure(figure, scratch / "strip.png"), "strip.png")
        os.replace(partial, out)
    return out
