"""Regenerate docs/screenshot.png and docs/temporal.png: the Explain and Temporal pages on the
bundled zoo, in a real browser.

    python docs/make_screenshot.py                 # needs Debian's chromium and the playwright package
    python docs/make_screenshot.py --explain-only  # docs/screenshot.png alone

Starts the app on a free localhost port, opens it in headless Chromium, waits until the Explain
page shows the frame where the clip's frame-importance curve peaks (where the page starts); when
that is frame 0, which has no previous frame and so no motion input, it moves the scrubber to the
highest peak after it; and saves the whole page.  Then it picks cnn_lstm-pause and a clip with a
pause, runs one-step TSR on the Temporal page (with a throw-away run store) and saves that page.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshot.png"
TEMPORAL_OUT = ROOT / "docs" / "temporal.png"
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


def important_frames() -> tuple[int, int]:
    """Where the Grad-CAM frame-importance curve of the page's default model and clip peaks, and
    where it peaks after frame 0."""
    import xai_core

    model = xai_core.load_model("cnn_transformer-sides", device="cpu")
    curve = xai_core.explain(model, xai_core.load_video(DEFAULT_CLIP, model=model), "gradcam").temporal
    return int(curve.argmax()), 1 + int(curve[1:].argmax())


def main(explain_only: bool = False) -> None:
    frame, later = important_frames()
    port = free_port()
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "XAI_RUNS": tempfile.mkdtemp()}
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
            if frame == 0:  # no previous frame, no motion input: show the strongest frame that has one
                page.locator('[data-testid="stMain"]').get_by_role("slider").first.focus()  # the Frame scrubber
                for _ in range(later):
                    page.keyboard.press("ArrowRight")
                page.get_by_text(f"frame {later} of 32").first.wait_for(timeout=120_000)
                wait_idle(page)
            height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
            page.set_viewport_size({"width": 1400, "height": max(1000, int(height))})
            wait_idle(page)
            OUT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(OUT), full_page=True)
            page.set_viewport_size({"width": 1400, "height": 1000})
            if not explain_only:
                temporal(page)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"wrote {OUT}" + ("" if explain_only else f" and {TEMPORAL_OUT}"))


def temporal(page) -> None:
    """The Temporal page: one-step TSR (blurred frames as the mask) of cnn_lstm-pause on a clip with a pause."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name="cnn_lstm-pause", exact=True).click()
    wait_idle(page)
    sidebar.get_by_text("Pause in the movement").click()
    wait_idle(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Temporal").click()
    page.get_by_role("heading", name="Temporal", exact=True).wait_for()
    wait_idle(page)
    page.get_by_text("tsr_onestep", exact=True).click()
    wait_idle(page)
    page.get_by_role("combobox", name="baseline").click()
    page.get_by_role("option", name="blur", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="stPlotlyChart"]').filter(has_text="time relevance").wait_for(timeout=600_000)
    wait_idle(page)
    page.get_by_role("button", name="Compute the curves").click()
    page.locator('[data-testid="stPlotlyChart"]').filter(has_text="deletion").wait_for(timeout=300_000)
    wait_idle(page)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, int(height))})
    wait_idle(page)
    page.screenshot(path=str(TEMPORAL_OUT), full_page=True)


if __name__ == "__main__":
    main(explain_only="--explain-only" in sys.argv[1:])
