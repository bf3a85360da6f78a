"""Regenerate docs/screenshot.png: the Explain page on the bundled zoo, in a real browser.

    python docs/make_screenshot.py            # needs Debian's chromium and the playwright package

Starts the app on a free localhost port, opens it in headless Chromium, waits until the page
shows the frame where the clip's frame-importance curve peaks (where the page starts), and saves
the whole page.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshot.png"
DEFAULT_CLIP = "shapes:7?noise=8&distractors=2"  # the sidebar's defaults


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_idle(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    page.wait_for_function(
        '() => !document.querySelector(\'[data-testid="stStatusWidget"], [data-testid="stSkeleton"], '
        '[data-stale="true"]\')',
        timeout=60_000,
    )


def most_important_frame() -> int:
    """Where the Grad-CAM frame-importance curve of the page's default model and clip peaks."""
    import xai_core

    model = xai_core.load_model("cnn_transformer-sides", device="cpu")
    return int(xai_core.explain(model, xai_core.load_video(DEFAULT_CLIP, model=model), "gradcam").temporal.argmax())


def main() -> None:
    frame = most_important_frame()
    port = free_port()
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text(f"frame {frame} of 32").first.wait_for(timeout=120_000)
            wait_idle(page)
            height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
            page.set_viewport_size({"width": 1400, "height": max(1000, int(height))})
            wait_idle(page)
            OUT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(OUT), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
