"""End-to-end: the app served by `streamlit run`, driven in Debian's Chromium with Playwright.

What the user sees on the Explain page: the frames and their captions, the charts, the
scrubber, clicking the importance curve, a corrupt upload and another Moving Shapes seed.
The zoo is a few small random models (fast). Needs /usr/bin/chromium (Debian: apt-get install
chromium; never `playwright install`); the module is skipped without it.
Screenshots go to test-artifacts/ (git-ignored); $XAI_README_SCREENSHOT also gets the page.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not found: install Debian's chromium to run the browser tests", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from conftest import write_app_zoo  # noqa: E402

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 30_000
FRAMES = 8


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    write_app_zoo(folder)
    return folder


@pytest.fixture(scope="module")
def start_frame(zoo) -> int:
    """Where the page starts: the peak of the default model's importance curve on the default clip."""
    import numpy as np

    import xai_core

    model = xai_core.load_model(str(zoo / "a_cnn_transformer"), device="cpu")
    clip = xai_core.load_video("shapes:7?noise=8&distractors=2", model=model)
    return int(np.argmax(xai_core.explain(model, clip, "gradcam").temporal))


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory):
    """The server's run store ($XAI_RUNS)."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def server(zoo, tmp_path_factory, runs_folder):
    """`streamlit run app.py` on a free local port, with a small zoo in $XAI_CHECKPOINTS."""
    with serve(zoo, tmp_path_factory, runs_folder) as url:
        yield url


@contextlib.contextmanager
def serve(zoo, tmp_path_factory, runs=None):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runs = runs or tmp_path_factory.mktemp("runs")
    env = {
        **os.environ,
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "XAI_CHECKPOINTS": str(zoo),
        "XAI_RUNS": str(runs),
    }
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    log = open(log_path, "wb")  # closed in teardown
    # fmt: off
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
    ]
    # fmt: on
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer in 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, request):
    """A fresh session on the Explain page, loaded and idle; a screenshot when the test fails."""
    context, page = new_page(browser)
    failed_before = request.session.testsfailed
    failed = True
    try:
        page.goto(server)
        expect(image_captions(page)).to_have_count(2)
        wait_idle(page)
        yield page
        test_failed = request.session.testsfailed > failed_before
        assert_clean(page)  # nothing went wrong after the test's last wait
        failed = test_failed
    finally:
        if failed:
            screenshot(page, ARTIFACTS / f"{request.node.name}.png")
        context.close()


def new_page(browser):
    """A new browser context and page: 1400x1000, the test timeout, uncaught errors collected."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.page_errors = []
    page.on("pageerror", lambda error: page.page_errors.append(str(error)))
    return context, page


def screenshot(page, path: str | Path) -> None:
    """The whole page: Streamlit scrolls inside its main container, so the viewport is made as
    tall as the content for the shot (width unchanged, so the layout stays the same)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size
    height = page.evaluate(
        """() => Math.max(...['stMain', 'stSidebarContent', 'stAppViewContainer'].map(id =>
            document.querySelector(`[data-testid="${id}"]`)?.scrollHeight || 0))"""
    )
    page.set_viewport_size({"width": viewport["width"], "height": max(viewport["height"], height)})
    try:
        page.screenshot(path=path, full_page=True, animations="disabled")
    finally:
        page.set_viewport_size(viewport)


def expect(locator):
    return sync_api.expect(locator)


sync_api.expect.set_options(timeout=TIMEOUT_MS)


def wait_idle(page) -> None:
    """Wait until the script has finished its run and the page shows no stale or loading
    element; then fail on an exception on the page or an uncaught error in the browser."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    for gone in ('[data-testid="stStatusWidget"]', '[data-testid="stSkeleton"]', '[data-stale="true"]'):
        page.wait_for_selector(gone, state="detached")
    assert_clean(page)


def assert_clean(page) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.all_inner_texts()
    assert not page.page_errors, page.page_errors


def image_captions(page):
    return page.locator('[data-testid="stImageCaption"]')


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def ground_truth(page):
    return page.locator('[data-testid="stCaptionContainer"]').filter(has_text="Ground truth:")


def expect_frame(page, frame: int) -> None:
    """Both images (original and overlay) show `frame` and the scrubber sits on it."""
    captions = image_captions(page)
    text = f"frame {frame} of {FRAMES}"
    expect(captions).to_have_count(2)
    expect(captions.nth(0)).to_contain_text(f"original · {text}")
    expect(captions.nth(1)).to_contain_text(text)
    expect(page.get_by_role("slider", name="Frame")).to_have_value(str(frame))


def test_page_loads_with_frames_charts_and_downloads(page, start_frame):
    expect(page.get_by_role("heading", name="Explain", exact=True)).to_be_visible()
    images = page.locator('[data-testid="stImage"] img')
    expect(images).to_have_count(2)
    for i in range(2):
        expect(images.nth(i)).to_be_visible()
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    expect_frame(page, start_frame)
    expect(image_captions(page).nth(1)).to_contain_text("gradcam for class")
    expect(page.locator('[data-testid="stPlotlyChart"]')).to_have_count(2)
    expect(page.locator('[data-testid="stPlotlyChart"] .main-svg').first).to_be_visible()
    expect(page.locator(".gtitle").filter(has_text=re.compile(r"^Frame importance"))).to_have_count(1)
    expect(page.get_by_role("button", name="Download overlay video (mp4)")).to_be_visible()
    expect(page.get_by_role("button", name="Download overlay GIF")).to_be_visible()
    expect(ground_truth(page)).to_have_count(1)
    screenshot(page, ARTIFACTS / "browser_explain.png")
    if os.environ.get("XAI_README_SCREENSHOT"):
        screenshot(page, os.environ["XAI_README_SCREENSHOT"])


def test_scrubber_steps_through_frames_with_the_keyboard(page, start_frame):
    slider = page.get_by_role("slider", name="Frame")
    slider.focus()
    key, step = ("ArrowLeft", -1) if start_frame >= 3 else ("ArrowRight", 1)
    for i in (1, 2, 3):
        slider.press(key)
        expect_frame(page, start_frame + step * i)
        wait_idle(page)
    expect_frame(page, start_frame + step * 3)


def test_clicking_the_importance_curve_moves_the_scrubber(page):
    chart = page.locator('[data-testid="stPlotlyChart"]').filter(
        has=page.locator(".gtitle", has_text=re.compile(r"^Frame importance"))
    )
    expect(chart).to_have_count(1)
    markers = chart.locator(".scatterlayer .trace").first.locator(".points path")
    expect(markers).to_have_count(FRAMES)
    box = markers.nth(5).bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect_frame(page, 5)
    wait_idle(page)
    expect_frame(page, 5)


def test_corrupt_upload_shows_one_error_and_keeps_the_app_usable(page, tmp_path, start_frame):
    sidebar(page).locator('[data-testid="stRadio"]').get_by_text("Upload", exact=True).click()
    dropzone = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    expect(dropzone).to_have_count(1)
    wait_idle(page)
    corrupt = tmp_path / "holiday.mp4"
    corrupt.write_bytes(os.urandom(4096))
    dropzone.set_input_files(corrupt)
    errors = page.locator('[data-testid="stAlertContentError"]')
    expect(errors).to_have_count(1)
    wait_idle(page)
    expect(errors).to_have_count(1)
    expect(errors).to_contain_text("holiday.mp4")
    expect(errors).to_contain_text("not a readable video")
    expect(page.locator('[data-testid="stImage"]')).to_have_count(0)
    # back to Moving Shapes: the page works again
    sidebar(page).locator('[data-testid="stRadio"]').get_by_text("Moving Shapes", exact=True).click()
    expect(errors).to_have_count(0)
    expect_frame(page, start_frame)  # the browser shows what the script uses, after the error page too
    expect(page.get_by_role("combobox", name="Explain the class")).to_have_value("the predicted class")
    expect(page.get_by_text(re.compile(r"^The predicted class on this clip: "))).to_have_count(1)
    wait_idle(page)
    expect(page.locator('[data-testid="stImage"] img')).to_have_count(2)


def test_another_seed_shows_another_clip(page):
    truth = ground_truth(page)
    before = truth.inner_text()
    assert before.startswith("Ground truth: a ")
    seed = sidebar(page).get_by_label("Seed")
    seed.fill("12")
    seed.press("Enter")
    expect(truth).not_to_have_text(before)
    wait_idle(page)
    expect(truth).to_have_count(1)
    assert truth.inner_text().startswith("Ground truth: a ") and truth.inner_text() != before
    expect(image_captions(page)).to_have_count(2)


def test_adding_methods_shows_their_maps_side_by_side_and_on_one_timeline(page, start_frame):
    methods = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Methods")
    expect(methods).to_have_count(1)
    for name in ("saliency", "attention_cls"):
        methods.locator("input").click()
        methods.locator("input").fill(name)
        page.keyboard.press("Enter")
        wait_idle(page)
    page.keyboard.press("Escape")
    captions = image_captions(page)
    expect(captions).to_have_count(4)  # original, gradcam, saliency, the attention strip
    expect(captions.nth(1)).to_contain_text("gradcam for class")
    expect(captions.nth(2)).to_contain_text("saliency for class")
    expect(captions.nth(2)).to_contain_text(f"frame {start_frame} of {FRAMES}")
    expect(captions.nth(3)).to_contain_text("attention_cls: attention weight of each frame")
    images = page.locator('[data-testid="stImage"] img')
    for i in range(4):
        images.nth(i).scroll_into_view_if_needed()
        expect(images.nth(i)).to_have_js_property("complete", True)
        assert images.nth(i).evaluate("img => img.naturalWidth > 0")
    page.mouse.wheel(0, -5000)
    chart = page.locator('[data-testid="stPlotlyChart"]').filter(
        has=page.locator(".gtitle", has_text=re.compile(r"^Frame importance"))
    )
    for name in ("gradcam", "saliency", "attention_cls"):  # one legend entry per method
        expect(chart.locator(".legendtext", has_text=re.compile(f"^{name}$"))).to_have_count(1)
    screenshot(page, ARTIFACTS / "browser_methods.png")


def test_models_page_shows_the_zoo_table_and_the_sidebar_choice_follows_to_explain(page):
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    cells = page.locator('[data-testid="stDataFrame"]').first.locator('[role="gridcell"]')
    expect(cells.filter(has_text="b_r3d")).to_have_count(1)
    wait_idle(page)
    names = [c.strip() for c in cells.all_inner_texts()]
    for name in ("a_cnn_transformer", "b_r3d", "c_cnn_lstm-angle", "cnn_transformer", "r3d", "cnn_lstm"):
        assert name in names, names
    expect(page.get_by_role("heading", name="a_cnn_transformer")).to_be_visible()  # the first model's card
    # selecting b_r3d's row (its box in the row-marker column; the grid is drawn on a canvas) shows its card
    grid = page.locator('[data-testid="stDataFrame"]').first
    box, rows = grid.bounding_box(), grid.locator('[role="row"]').count()  # the header and 3 models
    row_height = box["height"] / rows
    page.mouse.click(box["x"] + 16, box["y"] + row_height * 2.5)  # below the header and a_cnn_transformer's row
    expect(page.get_by_role("heading", name="b_r3d")).to_be_visible()
    wait_idle(page)
    screenshot(page, ARTIFACTS / "browser_models.png")
    # a model chosen in the sidebar here is the one the Explain page explains
    sidebar(page).get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name="b_r3d").click()
    wait_idle(page)
    nav.get_by_role("link", name="Explain").click()
    expect(
        page.locator('[data-testid="stCaptionContainer"]').filter(has_text="b_r3d · Moving Shapes #7")
    ).to_have_count(1)
    wait_idle(page)
    expect(image_captions(page)).to_have_count(2)
    expect(sidebar(page).get_by_role("combobox", name="Model")).to_have_value("b_r3d")


def test_a_page_opened_by_its_url_on_a_fresh_server_has_the_app_navigation(browser, zoo, tmp_path_factory):
    """The first visitor of a new server opens /models directly: Streamlit would serve the page
    file alone, with a menu of file names ("app", "explain", "models"); the page leaves that mode."""
    with serve(zoo, tmp_path_factory) as url:
        context, page = new_page(browser)
        try:
            page.goto(f"{url}/models")
            expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
            wait_idle(page)
            links = page.locator('[data-testid="stSidebarNavLink"]')
            expect(links).to_have_count(6)
            names = [t.split()[-1] for t in links.all_inner_texts()]  # after the icon
            assert names == ["Explain", "Temporal", "Motion", "Evaluate", "Runs", "Models"]
        finally:
            context.close()


def test_temporal_run_cancelled_then_a_run_shown(page):
    """The Temporal page: a long occlusion run shows its progress and stops when Cancel is pressed,
    saving nothing; a frame-masking run then shows its curve."""
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_role("link", name="Temporal").click()
    expect(page.get_by_role("heading", name="Temporal", exact=True)).to_be_visible()
    wait_idle(page)
    page.get_by_text("occlusion", exact=True).click()
    wait_idle(page)
    for name in ("window [1]", "window [2]", "stride [1]", "stride [2]"):  # 2x2-pixel windows: a long run
        box = page.get_by_label(name, exact=True)
        box.fill("2")
        box.press("Enter")
        wait_idle(page)
    expect(page.get_by_text(re.compile(r"model evaluations, about"))).to_be_visible()
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator('[data-testid="stProgress"]')).to_be_visible()
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text(re.compile(r"was cancelled after"))).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Not computed yet for these settings: press Run.")).to_be_visible()
    screenshot(page, ARTIFACTS / "browser_temporal_cancelled.png")
    page.get_by_text("frame_mask", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Run", exact=True).click()
    curve = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="drop in the score")
    expect(curve).to_have_count(1, timeout=60_000)
    wait_idle(page)
    screenshot(page, ARTIFACTS / "browser_temporal.png")


def test_motion_page_flow_maps_follow_the_scrubber(page):
    """The Motion page as a new user reaches it: the flow maps, the motion reliance, the per-frame
    motion-vs-appearance curve and the trajectories; the Frame slider moves every map to the next frame's flow."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Motion").click()
    expect(page.get_by_role("heading", name="Motion", exact=True)).to_be_visible()
    wait_idle(page)
    captions = image_captions(page)
    expect(captions).to_have_count(7, timeout=60_000)
    expect(page.locator('[data-testid="stPlotlyChart"]').filter(has_text="Motion vs appearance")).to_have_count(1)
    reliance = page.locator('[data-testid="stMetric"]').filter(has_text="Motion reliance")
    expect(reliance.locator('[data-testid="stMetricValue"]')).to_have_text(re.compile(r"^\d{1,3}%$"))
    slider = page.locator('input[type="range"][aria-label="Frame"]')  # not "Track history (frames)"
    frame = int(slider.input_value())
    expect(captions.nth(0)).to_contain_text(f"flow into frame {frame} ")
    step, new = ("ArrowRight", frame + 1) if frame < FRAMES - 1 else ("ArrowLeft", frame - 1)
    slider.focus()
    slider.press(step)
    expect(captions.nth(0)).to_contain_text(f"flow into frame {new} ")
    wait_idle(page)
    expect(captions.nth(6)).to_contain_text(f"frame {new}")  # the trajectories at the same frame
    screenshot(page, ARTIFACTS / "browser_motion.png")


def test_an_uploaded_clip_and_the_chosen_methods_survive_a_page_change(page, tmp_path):
    """Issue 18, point 2, as a user does it: upload a clip, choose two methods, visit the Motion
    page and come back; the clip is still the upload and both methods are still shown."""
    import numpy as np

    frames = np.random.default_rng(0).integers(0, 255, (20, 48, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "mine.npy", frames)
    sidebar(page).locator('[data-testid="stRadio"]').get_by_text("Upload", exact=True).click()
    dropzone = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    expect(dropzone).to_have_count(1)
    wait_idle(page)
    dropzone.set_input_files(tmp_path / "mine.npy")
    mine = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="mine.npy · 8 frames")
    expect(mine).to_have_count(1)
    wait_idle(page)
    methods = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Methods")
    methods.click()
    page.get_by_role("option", name="saliency").click()
    page.keyboard.press("Escape")
    wait_idle(page)
    expect(image_captions(page)).to_have_count(3)
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_role("link", name="Motion").click()
    expect(page.get_by_role("heading", name="Motion", exact=True)).to_be_visible()
    wait_idle(page)
    nav.get_by_role("link", name="Explain").click()
    expect(mine).to_have_count(1)
    wait_idle(page)
    captions = image_captions(page)
    expect(captions).to_have_count(3)
    expect(captions.nth(1)).to_contain_text("gradcam for ")
    expect(captions.nth(2)).to_contain_text("saliency for ")


def test_the_app_speed_benchmark_measures_what_a_user_meets(zoo, browser):
    """benchmarks/app_speed.py in this browser, on the small zoo (its timings are never asserted):
    the default overlay found, scrubbed frame by frame, the server's memory read, and TSR run
    from both pages in the background computing what the API computes, on the same engine."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("app_speed_under_test", ROOT / "benchmarks" / "app_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    env = {"XAI_BACKGROUND_SECONDS": "0"}  # the small zoo's TSR is quick: in the background all the same
    clip = "shapes:7?noise=8&distractors=2"
    result = bench.measure(zoo, 2, 1, [], "a_cnn_transformer", clip, server_env=env, browser=browser)
    assert result["server_ready"] < result["cold_start"] and len(result["scrub"]) == 2
    assert 0.1 < result["peak_rss_default"] <= result["peak_rss_end"] < 64
    assert result["explain_plan"].startswith("tsr: ") and "gradient engine" in result["explain_plan"]
    runs = [result["explain_tsr"], *result["temporal_tsr"], *result["api_tsr"]]
    assert {run["engine"] for run in runs} == {"GradientChange"}
    for run in runs[:2]:
        np.testing.assert_allclose(run["temporal"], result["api_tsr"][0]["temporal"], rtol=1e-5, atol=1e-7)
    text = bench.to_markdown({"when": "now", "machine": "here", "result": result, "summary": bench.summary(result)})
    assert "| Temporal page | 1 |" in text and "`GradientChange`" in text


def test_the_runs_page_opens_a_saved_run_and_compares_two(browser, server, runs_folder, zoo):
    """Issue 19, point 9: two runs saved from Python, found on the Runs page, one opened, then both
    compared on one scrubber with their difference map."""
    import xai_core

    model = xai_core.load_model(str(zoo / "a_cnn_transformer"), device="cpu")
    clip = xai_core.load_video("shapes:11?noise=8&distractors=2", model=model)
    keys = [xai_core.explain(model, clip, m, store=runs_folder).meta["run"] for m in ("gradcam", "saliency")]
    context, page = new_page(browser)
    try:
        page.goto(f"{server}/runs")
        expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
        wait_idle(page)
        expect(page.locator('[data-testid="stDataFrame"]')).to_have_count(1)
        chooser = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Open a run, or compare")
        for i, key in enumerate(keys):
            chooser.locator("input").click()
            chooser.locator("input").fill(key[:8])
            page.keyboard.press("Enter")
            page.keyboard.press("Escape")  # the list of options closes
            wait_idle(page)
            expect(image_captions(page).filter(has_text=f"#{i + 1} a_cnn_transformer")).to_have_count(1)
        expect(image_captions(page).filter(has_text="difference #1 − #2")).to_have_count(1)
        images = page.locator('[data-testid="stImage"] img')
        expect(images).to_have_count(4)  # the original, two maps, their difference
        for i in range(4):
            assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
        before = int(re.search(r"frame (\d+)$", image_captions(page).first.inner_text()).group(1))
        slider = page.get_by_role("slider", name="Frame")
        slider.focus()
        key, after = ("ArrowRight", before + 1) if before < FRAMES - 1 else ("ArrowLeft", before - 1)
        slider.press(key)
        wait_idle(page)
        expect(image_captions(page).filter(has_text=re.compile(rf"frame {after}$"))).to_have_count(4)  # one scrubber
        screenshot(page, ARTIFACTS / "browser_runs_compare.png")
        assert_clean(page)
    finally:
        context.close()
