"""End to end in a real browser: Debian's Chromium driven by Playwright against `regionedit serve`'s Gradio page
(bundled shapes-64 models, 2 steps), served by uvicorn in a thread on a free loopback port.

upload -> instruction -> Edit (mask-free) -> result -> download (PNG with metadata) -> Find region -> clear the
paint, draw a stroke on the ImageEditor with mouse events -> Edit again -> the output differs from the source only
inside the drawn area -> use result as new source -> undo; then an example, the error messages, and that the page
loads nothing from outside the server.

Skips (with the reason) when Playwright, Chromium or Gradio is missing. CI installs them: `apt-get install -y
chromium` and `pip install -e .[test]` (no `playwright install`: the system Chromium is used).
"""

import io
import os
import re
import shutil
import time

import numpy as np
import pytest
import torch
from PIL import Image

CHROMIUM = os.environ.get("REGIONEDIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT = 90_000  # ms: generous, CI machines are slow and shared

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    pytest.skip("playwright is not installed (pip install playwright)", allow_module_level=True)
if not os.path.isfile(CHROMIUM):
    pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)
pytest.importorskip("gradio", reason="the web UI needs gradio (pip install 'regionedit[web]')")

from regionedit.io import MASK_KEY, mask_from_text, read_png_metadata  # noqa: E402
from regionedit.pipeline import Editor, EditorConfig  # noqa: E402
from regionedit.web import WebConfig, make_server  # noqa: E402
from regionedit.world import render, sample_scene  # noqa: E402


@pytest.fixture(scope="module")
def server():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    editor = Editor.from_pretrained("shapes-64", config=EditorConfig(steps=2, candidates=1))
    with make_server(editor, "127.0.0.1", 0, WebConfig()) as srv:
        yield srv
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT)
    errors, external = [], []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # anything fetched from elsewhere (a request the page's CSP blocks is never answered: not counted)
    pg.on("response", lambda r: external.append(r.url) if not r.url.startswith((server.url, "data:", "blob:")) else None)
    pg.goto(server.url)
    pg.get_by_role("button", name="Edit", exact=True).wait_for()
    yield pg
    ctx.close()
    assert not errors, errors
    assert not external, external  # no CDN, no fonts, no analytics: nothing outside the server


def status(page) -> str:
    return page.locator("#status textarea").input_value()


def wait_status(page, text: str) -> str:
    page.wait_for_function("t => document.querySelector('#status textarea').value.includes(t)", arg=text)
    return status(page)


def image_of(page, selector: str) -> np.ndarray:
    """The image a Gradio image component shows, fetched from the server like the page does."""
    src = page.locator(f"{selector} img").first.get_attribute("src")
    r = page.request.get(src)
    assert r.ok, (src, r.status)
    return np.asarray(Image.open(io.BytesIO(r.body())).convert("RGB"))


def download(page, tmp_path, name: str):
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download PNG").click()
    path = tmp_path / name
    dl.value.save_as(path)
    assert dl.value.suggested_filename.endswith(".png")
    return path


def wait_canvas_shows(page, src: np.ndarray, timeout: float = 30.0) -> None:
    """Wait until the ImageEditor's canvas shows the source (it loads a new value asynchronously: a stroke drawn
    before that would be lost)."""
    want = src[src.shape[0] // 2, src.shape[1] // 2].astype(int)
    deadline = time.monotonic() + timeout
    while True:
        shot = np.asarray(Image.open(io.BytesIO(page.locator("#paint canvas").first.screenshot())).convert("RGB"))
        got = shot[shot.shape[0] // 2, shot.shape[1] // 2].astype(int)
        if np.abs(got - want).max() <= 12:
            return
        assert time.monotonic() < deadline, f"the ImageEditor did not show the image (centre {got}, want {want})"
        time.sleep(0.2)


def draw(page, points, hw):
    """A brush stroke with real mouse events through ``points`` (x, y) in image pixels. The ImageEditor shows the
    image centred on its canvas at the zoom its toolbar reads ("260%")."""
    box = page.locator("#paint canvas").first.bounding_box()
    zoom = float(re.search(r"(\d+)%", page.locator("#paint").inner_text()).group(1)) / 100
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def to_screen(x, y):
        return cx + (x + 0.5 - hw[1] / 2) * zoom, cy + (y + 0.5 - hw[0] / 2) * zoom

    page.mouse.move(*to_screen(*points[0]))
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(*to_screen(x, y), steps=10)
    page.mouse.up()


def test_upload_edit_draw_reedit_download_undo(page, tmp_path):
    # a non-square world scene (64 x 128: a purple star and a white circle), so the canvas mapping is really tested
    src = render(sample_scene(np.random.default_rng(2)), (64, 128))
    f = tmp_path / "scene.png"
    Image.fromarray(src).save(f)

    page.locator("#source input[type=file]").set_input_files(str(f))
    assert "128x64" in wait_status(page, "loaded scene.png")
    page.get_by_text("Seed, steps, guidance").click()
    page.get_by_label("Seed").fill("5")
    page.get_by_label("Seed").press("Tab")  # commit the value (Gradio reads it on change)
    page.get_by_label("Instruction").fill("make the purple star green")

    # mask-free edit -> a result, changed only inside the reported region
    page.get_by_role("button", name="Edit", exact=True).click()
    assert wait_status(page, "edited (region)")
    res1 = image_of(page, "#result")
    assert res1.shape == src.shape
    meta = read_png_metadata(download(page, tmp_path, "first.png"))
    assert meta["regionedit:instruction"] == "make the purple star green" and meta["regionedit:status"] == "edited"
    assert meta["regionedit:method"] == "region" and meta["regionedit:model"] == "shapes-64"
    assert meta["regionedit:seed"] == "5"
    m1 = mask_from_text(meta[MASK_KEY]) > 0.5
    assert m1.any() and not ((res1 != src).any(-1) & ~m1).any()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "first.png")), res1)

    # correct the region: draw a stroke with the mouse on the ImageEditor, edit again
    wait_canvas_shows(page, src)
    stroke = [(40, 20), (60, 22), (70, 40)]
    draw(page, stroke, src.shape[:2])
    page.get_by_role("button", name="Edit", exact=True).click()
    page.wait_for_function("() => document.querySelector('#history textarea').value.includes('2. ')")
    assert "edited (mask)" in status(page)
    meta = read_png_metadata(download(page, tmp_path, "second.png"))
    assert meta["regionedit:method"] == "mask" and meta["regionedit:seed"] == "5", \
        (meta["regionedit:seed"], page.get_by_label("Seed").input_value(), page.locator("#history textarea").input_value())
    mask = mask_from_text(meta[MASK_KEY]) > 0.5
    res2 = np.asarray(Image.open(tmp_path / "second.png"))
    ys, xs = np.nonzero(mask)
    slack = 4 + 4  # brush radius (default_size=4) + rounding of the zoom and the canvas centre
    assert 20 < mask.sum() < 0.25 * mask.size
    assert xs.min() >= 40 - slack and xs.max() <= 70 + slack and ys.min() >= 20 - slack and ys.max() <= 40 + slack
    assert mask[21, 50] and mask[30, 65]  # on the stroke
    assert not ((res2 != src).any(-1) & ~mask).any()  # untouched outside the drawn area
    assert (res2[mask] != src[mask]).any()
    assert np.array_equal(image_of(page, "#result"), res2)

    # Find region: the predicted region as an overlay (and on the brush layer); Clear paint -> mask-free again
    page.get_by_role("button", name="Find region").click()
    assert "px" in wait_status(page, "region:")
    assert image_of(page, "#region").shape == src.shape
    page.get_by_role("button", name="Clear paint").click()
    page.wait_for_function("() => !document.querySelector('#region img')")
    page.get_by_role("button", name="Edit", exact=True).click()
    page.wait_for_function("() => document.querySelector('#history textarea').value.includes('3. ')")
    assert "edited (region)" in status(page)

    # multi-turn: the result becomes the new source; undo brings the original back
    res3 = image_of(page, "#result")
    page.get_by_role("button", name="Use result as new source").click()
    wait_status(page, "the result is the new source")
    assert np.array_equal(image_of(page, "#source"), res3)
    page.get_by_role("button", name="Undo last turn").click()
    wait_status(page, "undone")
    assert np.array_equal(image_of(page, "#source"), src)
    assert np.array_equal(image_of(page, "#result"), res3)
    page.get_by_role("button", name="Undo last turn").click()  # the third edit undone: the second result is back
    page.wait_for_function("() => !document.querySelector('#history textarea').value.includes('3. ')")
    assert np.array_equal(image_of(page, "#result"), res2)


def test_example_and_error_messages(page, tmp_path):
    # an example scene: its instruction fills the box; edit it
    page.locator("#examples img").first.click()
    wait_status(page, "loaded example 1")
    assert page.get_by_label("Instruction").input_value()
    page.get_by_role("button", name="Edit", exact=True).click()
    page.wait_for_function("() => document.querySelector('#history textarea').value.includes('1. ')")

    # an empty instruction and a GIF upload: clear messages, nothing breaks
    page.get_by_label("Instruction").fill("   ")
    page.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_text("type an instruction first").first.wait_for()
    gif = tmp_path / "x.gif"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(gif)
    page.locator("#source input[type=file]").set_input_files(str(gif))
    page.get_by_text("only PNG, JPEG and WebP images are accepted").first.wait_for()
    assert status(page).startswith("edited")  # the refusals left the session as it was
    assert "1. " in page.locator("#history textarea").input_value()
