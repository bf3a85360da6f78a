"""Video: sampling a clip to the model's input (ours, decoding once and streaming, against OpenCV
decoding every frame) and writing H.264."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..video import load_video, sample_clips, write_video
from .timing import median_seconds


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
    frames = load_video("shapes:1").frames
    out = Path(tempfile.mkdtemp()) / "clip.mp4"
    results["write_h264_32x112"] = median_seconds(lambda: write_video(frames, out), repeats)
    return results
