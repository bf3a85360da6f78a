"""The app's own speed, measured in Chromium as a user meets it (issue 18, point 5):
``python benchmarks/app_speed.py [--markdown BENCHMARKS.md]``.

``streamlit run app.py`` on the committed zoo (``$XAI_CHECKPOINTS``) with an empty run store,
driven by Debian's Chromium through Playwright:

* **cold start**: from launching the server to the default explanation on the screen (the
  Explain page's Grad-CAM overlay drawn);
* **scrub**: a warm step of the frame slider (arrow key) until the next frame's overlay is drawn,
  ``--scrubs`` steps;
* **peak RSS**: the server's high-water mark (``VmHWM``) after the default explanation and the
  scrubs, and again after the TSR runs below;
* **TSR** with its default settings on the default model and clip: run from the Explain page (in
  the background), from the Temporal page (``--tsr-runs`` times), and through the API in a fresh
  process (``explain(model, clip, "tsr")``, as often): the seconds each run reports, and the
  engine it used (the page's from its saved run);
* **cancel**: Cancel pressed ``--cancel-after`` seconds into a TSR run on the Temporal page, until
  the page says it was cancelled.

Writes results/app_speed.md (and .json); ``--markdown`` rewrites BENCHMARKS.md with it.  The
timings depend on the machine's load: the load average at the start and the end is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHROMIUM = "/usr/bin/chromium"
GOALS = {"cold_start": 15.0, "scrub": 0.5, "peak_rss_default": 2.0}  # seconds, seconds, GiB (issue 18)
TIMEOUT_MS = 600_000
API_TSR = """
import json, sys, xai_core
model = xai_core.load_model(sys.argv[1], device="cpu")
clip = xai_core.load_video(sys.argv[2], model=model)
runs = []
for _ in range(int(sys.argv[3])):
    expl = xai_core.explain(model, clip, "tsr")
    runs.append({"seconds": expl.seconds, "engine": expl.meta.get("engine"), "temporal": expl.temporal.tolist()})
print(json.dumps(runs))
"""


def say(text: str) -> None:
    """Progress on stderr, with the time."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def peak_rss_gib(pid: int) -> float:
    """A process's peak resident memory so far (Linux ``VmHWM``), GiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError(f"no VmHWM for process {pid}")


def load_average() -> float:
    return os.getloadavg()[0]


@contextlib.contextmanager
def serve(checkpoints: Path, runs: Path, log_path: Path, extra_env: dict | None = None):
    """``streamlit run app.py`` on a free port: (url, process, the time it was launched)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "XAI_CHECKPOINTS": str(checkpoints),
        "XAI_RUNS": str(runs),
        **(extra_env or {}),
    }
    # fmt: off
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
    ]
    # fmt: on
    with open(log_path, "wb") as log:
        launched = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{port}", process, launched
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_healthy(url: str, process, log_path: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not answer in {seconds:.0f} s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)


def wait_idle(page) -> None:
    """The script's run finished and nothing on the page is stale or loading; no exception shown."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    for gone in ('[data-testid="stStatusWidget"]', '[data-testid="stSkeleton"]', '[data-stale="true"]'):
        page.wait_for_selector(gone, state="detached")
    exceptions = page.locator('[data-testid="stException"]')
    if exceptions.count():
        raise RuntimeError(f"the page shows an exception: {exceptions.all_inner_texts()}")


OVERLAY_DRAWN = """([method, frame]) => {
    const captions = [...document.querySelectorAll('[data-testid="stImageCaption"]')];
    const i = captions.findIndex(c => c.innerText.startsWith(method + " for ") && c.innerText.includes(frame));
    if (i < 0) return false;
    const img = captions[i].closest('[data-testid="stImage"]')?.querySelector('img');
    return !!img && img.complete && img.naturalWidth > 0;
}"""


def overlay_drawn(page, method: str, frame: int | None = None, timeout_ms: float = TIMEOUT_MS) -> None:
    """Wait until ``method``'s overlay (of ``frame``, if given) is on the screen, its image loaded."""
    text = "" if frame is None else f"· frame {frame} of "
    page.wait_for_function(OVERLAY_DRAWN, arg=[method, text], polling="raf", timeout=timeout_ms)


def frame_shown(page) -> int:
    caption = page.locator('[data-testid="stImageCaption"]').nth(1).inner_text()
    return int(re.search(r"· frame (\d+) of", caption).group(1))


def frame_count(page) -> int:
    caption = page.locator('[data-testid="stImageCaption"]').nth(1).inner_text()
    return int(re.search(r"· frame \d+ of (\d+)", caption).group(1))


def newest_run_time(runs: Path) -> int:
    """The modification time of the newest run saved in the store (0: none yet)."""
    return max((p.stat().st_mtime_ns for p in runs.glob("*/explanation.json")), default=0)


def wait_for_new_run(runs: Path, after: int, seconds: float = TIMEOUT_MS / 1000) -> None:
    """Wait until a run newer than ``after`` is saved in the store."""
    deadline = time.monotonic() + seconds
    while newest_run_time(runs) <= after:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no new run was saved in {seconds:.0f} s")
        time.sleep(0.1)


def saved_run(runs: Path, method: str) -> dict:
    """The newest saved run of ``method`` in the run store: the seconds and engine it reports, and
    its frame curve (the time relevance, for TSR)."""
    import numpy as np

    found = sorted(runs.glob("*/explanation.json"), key=lambda p: p.stat().st_mtime)
    matching = [p for p in found if json.loads(p.read_text())["method"] == method]
    if not matching:
        raise RuntimeError(f"no saved {method} run in {runs}")
    data = json.loads(matching[-1].read_text())
    with np.load(matching[-1].parent / "explanation.npz") as arrays:
        temporal = arrays["temporal"].tolist()
    return {"seconds": data["seconds"], "engine": data["meta"].get("engine"), "temporal": temporal}


def measure(
    checkpoints: Path,
    scrubs: int,
    tsr_runs: int,
    cancel_after: list[float],
    model: str,
    clip: str,
    server_env: dict | None = None,
    browser=None,
) -> dict:
    """Every measurement of the module's docstring, in one server and one browser session
    (``server_env``: more environment for the server, e.g. $XAI_BACKGROUND_SECONDS for a small
    zoo whose TSR would otherwise run on the spot; ``browser``: a Playwright Chromium already
    running, else one is started)."""
    if browser is not None:
        return _measure(browser, checkpoints, scrubs, tsr_runs, cancel_after, model, clip, server_env)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        try:
            return _measure(chromium, checkpoints, scrubs, tsr_runs, cancel_after, model, clip, server_env)
        finally:
            chromium.close()


def _measure(browser, checkpoints, scrubs, tsr_runs, cancel_after, model, clip, server_env) -> dict:
    result: dict = {"load_average": [load_average()], "model": model, "clip": clip}
    with tempfile.TemporaryDirectory(prefix="xai-app-speed-") as tmp:
        runs, log_path = Path(tmp) / "runs", Path(tmp) / "streamlit.log"
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        with serve(checkpoints, runs, log_path, server_env) as (url, process, launched):
            wait_healthy(url, process, log_path)
            result["server_ready"] = time.perf_counter() - launched
            page.goto(url)
            overlay_drawn(page, "gradcam")
            result["cold_start"] = time.perf_counter() - launched
            say(f"cold start {result['cold_start']:.1f} s")
            wait_idle(page)

            steps = []
            slider = page.get_by_role("slider", name="Frame")
            slider.focus()
            frames = frame_count(page)
            for _ in range(scrubs):
                now = frame_shown(page)
                key, step = ("ArrowRight", 1) if now < frames - 1 else ("ArrowLeft", -1)
                start = time.perf_counter()
                slider.press(key)
                overlay_drawn(page, "gradcam", now + step)
                steps.append(time.perf_counter() - start)
                wait_idle(page)
            result["scrub"] = steps
            say(f"scrubs {[round(s, 3) for s in steps]}")
            result["peak_rss_default"] = peak_rss_gib(process.pid)

            methods = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Methods")
            methods.locator("input").click()
            methods.locator("input").fill("tsr")
            page.get_by_role("option", name=re.compile(r"^(⚠ )?tsr$")).click()
            page.keyboard.press("Escape")
            wait_idle(page)
            result["explain_plan"] = page.locator("li").filter(has_text=re.compile(r"^tsr: [\d,]+ model")).inner_text()
            start = time.perf_counter()
            page.get_by_role("button", name=re.compile(r"^Run tsr in the background")).click()
            overlay_drawn(page, "tsr")
            result["explain_tsr_wall"] = time.perf_counter() - start
            say(f"Explain page tsr {result['explain_tsr_wall']:.1f} s")
            result["explain_tsr"] = saved_run(runs, "tsr")
            wait_idle(page)

            page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Temporal").click()
            page.get_by_role("heading", name="Temporal", exact=True).wait_for()
            wait_idle(page)
            page.get_by_text("tsr", exact=True).click()
            wait_idle(page)
            result["temporal_plan"] = page.get_by_text(re.compile(r"model evaluations, about")).first.inner_text()
            temporal = []
            progress = page.locator('[data-testid="stProgress"]')
            for _ in range(tsr_runs):
                before = newest_run_time(runs)
                page.get_by_role("button", name=re.compile(r"^Run( again)?$")).click()
                wait_for_new_run(runs, before)  # (a quick run may end before a progress bar is drawn)
                progress.first.wait_for(state="detached")
                wait_idle(page)
                temporal.append(saved_run(runs, "tsr"))
                say(f"Temporal page tsr {temporal[-1]['seconds']:.1f} s")
            result["temporal_tsr"] = temporal

            cancels = []
            for delay in cancel_after:
                page.get_by_role("button", name=re.compile(r"^Run( again)?$")).click()
                progress.first.wait_for(state="visible")
                time.sleep(delay)
                cancel = page.get_by_role("button", name="Cancel")
                if not cancel.count():
                    cancels.append({"after": delay, "seconds": None, "stage": "finished before Cancel"})
                    wait_idle(page)
                    continue
                stage = progress.first.inner_text()
                start = time.perf_counter()
                cancel.click()
                page.get_by_text(re.compile(r"was cancelled after")).wait_for()
                cancels.append({"after": delay, "seconds": time.perf_counter() - start, "stage": stage})
                say(f"cancel {cancels[-1]}")
                wait_idle(page)
            result["cancel"] = cancels
            result["peak_rss_end"] = peak_rss_gib(process.pid)
        context.close()

    api = subprocess.run(
        [sys.executable, "-c", API_TSR, model, clip, str(tsr_runs)],
        cwd=ROOT,
        env={**os.environ, "XAI_CHECKPOINTS": str(checkpoints)},
        capture_output=True,
        text=True,
        check=True,
    )
    result["api_tsr"] = json.loads(api.stdout.strip().splitlines()[-1])
    result["load_average"].append(load_average())
    return result


def summary(result: dict) -> dict:
    """The figures the table shows: medians, and whether each goal is met."""
    scrub = statistics.median(result["scrub"]) if result["scrub"] else float("nan")
    figures = {"cold_start": result["cold_start"], "scrub": scrub, "peak_rss_default": result["peak_rss_default"]}
    return {
        **figures,
        "meets": {k: figures[k] < goal for k, goal in GOALS.items()},
        "temporal_tsr": statistics.median(r["seconds"] for r in result["temporal_tsr"]),
        "api_tsr": statistics.median(r["seconds"] for r in result["api_tsr"]),
        "cancel_max": max((c["seconds"] for c in result["cancel"] if c["seconds"] is not None), default=None),
    }


def to_markdown(report: dict) -> str:
    r, s = report["result"], report["summary"]

    def verdict(key: str) -> str:
        return "meets" if s["meets"][key] else "misses"

    engines = {r["explain_tsr"]["engine"], *(x["engine"] for x in r["temporal_tsr"] + r["api_tsr"])}
    lines = [
        f"Measured {report['when']} on {report['machine']} (load average {r['load_average'][0]:.1f} at the start, "
        f"{r['load_average'][1]:.1f} at the end), model `{r['model']}`, clip `{r['clip']}`, Chromium through "
        "Playwright; the server as `streamlit run app.py` starts it (torch's default threads).",
        "",
        "| what | measured | goal (issue 18) |",
        "|---|---|---|",
        f"| cold start: server launched to the Grad-CAM overlay on the screen | {s['cold_start']:.1f} s "
        f"(server answering after {r['server_ready']:.1f} s) | < {GOALS['cold_start']:.0f} s: "
        f"{verdict('cold_start')} |",
        f"| warm scrub: arrow key to the next frame's overlay drawn | median {s['scrub'] * 1000:.0f} ms of "
        f"{len(r['scrub'])} (max {max(r['scrub']) * 1000:.0f} ms) | < {GOALS['scrub'] * 1000:.0f} ms: "
        f"{verdict('scrub')} |",
        f"| server's peak RSS, default model, explanation and scrubs | {s['peak_rss_default']:.2f} GiB | "
        f"< {GOALS['peak_rss_default']:.0f} GiB: {verdict('peak_rss_default')} |",
        f"| server's peak RSS after the TSR runs below | {r['peak_rss_end']:.2f} GiB | — |",
        "",
        "TSR with its default settings (the same engine everywhere: "
        + ", ".join(f"`{e}`" for e in sorted(str(e) for e in engines))
        + "), seconds as each run reports them:",
        "",
        "| where | runs | seconds | estimate shown before the run |",
        "|---|---|---|---|",
        f"| Explain page, in the background | 1 | {r['explain_tsr']['seconds']:.1f} s (button to overlay: "
        f"{r['explain_tsr_wall']:.1f} s) | {r['explain_plan']} |",
        f"| Temporal page | {len(r['temporal_tsr'])} | median {s['temporal_tsr']:.1f} s "
        f"({seconds_list(r['temporal_tsr'])}) | {r['temporal_plan']} |",
        f'| API, `explain(model, clip, "tsr")` in a fresh process | {len(r["api_tsr"])} | median '
        f"{s['api_tsr']:.1f} s ({seconds_list(r['api_tsr'])}) | — |",
        "",
        f"The pages' runs ÷ the API's: {s['temporal_tsr'] / s['api_tsr']:.2f}x (Temporal page, medians); the page's "
        "run is a thread of the server, sharing the cores with the browser drawing its progress. Compare these "
        "figures with the suite's TSR row above only on the same machine (that section says where it was measured).",
        "",
        "Cancel pressed during a TSR run on the Temporal page, until the page says it was cancelled "
        "(the page redraws a running job's progress every 0.5 s):",
        "",
        "| pressed after | stage then | until 'cancelled' on the screen |",
        "|---|---|---|",
    ]
    for c in r["cancel"]:
        took = f"{c['seconds']:.2f} s" if c["seconds"] is not None else "—"
        stage = c["stage"].replace("|", "/").replace("\n", " ")
        lines.append(f"| {c['after']:g} s | {stage} | {took} |")
    return "\n".join(lines) + "\n"


def seconds_list(runs: list[dict]) -> str:
    return ", ".join(f"{run['seconds']:.1f}" for run in runs)


def machine() -> str:
    """The CPU, its cores and Python's version (``xai_core.bench.host``)."""
    from xai_core.bench.host import describe

    return describe()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoints", type=Path, default=Path(os.environ.get("XAI_CHECKPOINTS", ROOT / "checkpoints"))
    )
    parser.add_argument("--model", default="cnn_transformer-sides", help="the app's default model (for the API runs)")
    parser.add_argument("--clip", default="shapes:7?noise=8&distractors=2", help="the app's default clip")
    parser.add_argument("--scrubs", type=int, default=10)
    parser.add_argument("--tsr-runs", type=int, default=3)
    parser.add_argument("--cancel-after", default="1,5,10", help="seconds into a run, comma-separated")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--name", default="app_speed")
    parser.add_argument("--markdown", help="also rewrite this BENCHMARKS.md with the new table")
    args = parser.parse_args(argv)
    delays = [float(v) for v in args.cancel_after.split(",") if v.strip()]
    result = measure(args.checkpoints, args.scrubs, args.tsr_runs, delays, args.model, args.clip)
    report = {
        "when": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "result": result,
        "summary": summary(result),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = to_markdown(report)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)
    if args.markdown:
        from xai_core.bench.report import benchmarks_markdown

        Path(args.markdown).write_text(benchmarks_markdown(args.out))
    return report


if __name__ == "__main__":
    main()
