"""End to end in a real browser: Debian's Chromium driven by Playwright against `regionedit serve` (tiny models).

upload -> instruction -> region -> result -> mask correction drawn with mouse events -> regenerate -> use result
as new source -> undo, checking the images that come back (decoded from the page's data URLs): pixels outside
the corrected mask equal the source, the mask the page sent is where the mouse drew, metadata is in the PNG.

Skips (with the reason) when Playwright or Chromium is missing. CI installs them: `apt-get install -y chromium`
and `pip install playwright` (no `playwright install`: the system Chromium is used).
"""

import base64
import io
import os
import shutil
import threading

import numpy as np
import pytest
import torch
from PIL import Image

CHROMIUM = os.environ.get("REGIONEDIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    pytest.skip("playwright is not installed (pip install playwright)", allow_module_level=True)
if not os.path.isfile(CHROMIUM):
    pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)

from regionedit.compose import dilate  # noqa: E402
from regionedit.io import MASK_KEY, read_png_metadata  # noqa: E402
from regionedit.world.tiny import save_tiny_models  # noqa: E402
from regionedit.pipeline import Editor, EditorConfig  # noqa: E402
from regionedit.web import WebConfig, make_server  # noqa: E402
from regionedit.world import sample_edit  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    d = save_tiny_models(tmp_path_factory.mktemp("tiny"), region_bias=3.0)  # predicted region: the whole image
    editor = Editor.from_pretrained(d, config=EditorConfig(steps=2))
    srv = make_server(editor, "127.0.0.1", 0, WebConfig())
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(10)
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
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    external = []
    pg.on("request", lambda r: external.append(r.url) if not r.url.startswith((server.url, "data:", "blob:")) else None)
    pg.goto(server.url)
    pg.wait_for_selector("body[data-ready='1']")
    pg.expected_errors = []  # console messages a test provokes on purpose (refused uploads)
    yield pg
    ctx.close()
    errors = [e for e in errors if not any(x in e for x in pg.expected_errors)]
    assert not errors, errors
    assert not external, external  # no CDN, nothing outside the server


def decode(data_url: str) -> np.ndarray:
    head, _, b64 = data_url.partition(",")
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def wait_idle(page):
    page.wait_for_function("() => document.body.dataset.busy === '0'")


def draw(page, points):
    """A brush stroke with real mouse events through ``points`` given in image pixels."""
    box = page.locator("#mask-canvas").bounding_box()
    w, h = page.evaluate("[document.getElementById('mask-canvas').width, document.getElementById('mask-canvas').height]")
    to_screen = lambda x, y: (box["x"] + (x + 0.5) * box["width"] / w, box["y"] + (y + 0.5) * box["height"] / h)  # noqa: E731
    page.mouse.move(*to_screen(*points[0]))
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(*to_screen(x, y), steps=8)
    page.mouse.up()


def test_upload_edit_correct_regenerate_chain_undo(page, tmp_path):
    # a non-square source (64 x 128) so the canvas <-> image coordinate mapping is really tested
    src = np.concatenate([sample_edit(0, 2).source, sample_edit(0, 3).source], axis=1)
    f = tmp_path / "source.png"
    Image.fromarray(src).save(f)

    # upload
    page.set_input_files("#file", str(f))
    page.wait_for_function("() => window.regionedit.state.source !== null")
    wait_idle(page)
    assert page.locator("#source-size").inner_text() == "128×64"
    assert np.array_equal(decode(page.evaluate("window.regionedit.state.source")), src)

    # instruction -> predicted region shown on the canvas, with the target description
    page.fill("#instruction", "remove the red diamond")
    page.click("#find-region")
    page.wait_for_function("() => window.regionedit.state.region !== null")
    wait_idle(page)
    assert "region:" in page.locator("#region-info").inner_text() and "px" in page.locator("#region-info").inner_text()
    assert page.locator("#target-info").inner_text().startswith("→")

    # generate (mask-free) -> result beside the source
    page.click("#generate")
    page.wait_for_function("() => window.regionedit.state.turns.length === 1")
    wait_idle(page)
    r1 = page.evaluate("window.regionedit.state.result")
    assert r1["status"] == "edited" and r1["method"] == "region"
    assert page.locator("#status").get_attribute("data-status") == "edited"
    res1 = decode(page.locator("#result-img").get_attribute("src"))
    assert res1.shape == src.shape
    assert page.locator("#r-target").inner_text() == r1["target_description"] != ""

    # the download link is the result PNG with its provenance metadata
    with page.expect_download() as dl:
        page.click("#download")
    saved = tmp_path / "download.png"
    dl.value.save_as(saved)
    assert dl.value.suggested_filename.endswith(".png")
    meta = read_png_metadata(saved)
    assert meta["regionedit:instruction"] == "remove the red diamond" and meta["regionedit:status"] == "edited"
    assert MASK_KEY in meta and np.array_equal(np.asarray(Image.open(saved)), res1)

    # correct the region: reject it, paint a stroke with the mouse, regenerate with a new seed
    page.click("#reject-region")
    assert page.evaluate("window.regionedit.exportMask().pixels") == 0
    page.fill("#seed", "5")
    page.fill("#steps", "1")
    stroke = [(20, 20), (40, 22), (44, 40)]
    draw(page, stroke)
    assert page.is_checked("#use-mask")
    page.click("#generate")
    page.wait_for_function("() => window.regionedit.state.turns.length === 2")
    wait_idle(page)
    r2 = page.evaluate("window.regionedit.state.result")
    assert r2["status"] == "edited" and r2["method"] == "mask" and r2["seed"] == 5 and r2["steps"] == 1

    sent = decode(page.evaluate("window.regionedit.state.lastRequest.mask"))
    assert sent.shape[:2] == src.shape[:2]
    mask = sent[..., 0] > 127
    ys, xs = np.nonzero(mask)
    radius = int(page.input_value("#brush-size")) / 2 + 2
    assert mask.sum() > 0
    assert xs.min() >= 20 - radius and xs.max() <= 44 + radius and ys.min() >= 20 - radius and ys.max() <= 40 + radius
    assert mask[22, 30] and mask[30, 42]  # on the stroke
    assert np.array_equal(decode(r2["mask"]) > 0, mask)  # the server used exactly the painted mask
    res2 = decode(r2["image"])
    support = dilate(mask, max(4, int(np.ceil(2 * 128 / 64))) + 2)
    assert np.array_equal(res2[~support], src[~support])  # untouched outside the corrected region
    assert not np.array_equal(res2[mask], src[mask])

    # multi-turn: the result becomes the new source; then undo back
    page.click("#use-result")
    page.wait_for_function("() => window.regionedit.state.result === null")
    assert np.array_equal(decode(page.evaluate("window.regionedit.state.source")), res2)
    assert page.locator("#history li").count() == 2
    page.click("#undo")
    page.wait_for_function("() => window.regionedit.state.result !== null")
    assert np.array_equal(decode(page.evaluate("window.regionedit.state.source")), src)
    assert np.array_equal(decode(page.evaluate("window.regionedit.state.result.image")), res2)
    page.click("#undo")  # back to before the corrected edit: the first result
    page.wait_for_function("() => window.regionedit.state.turns.length === 1")
    assert np.array_equal(decode(page.evaluate("window.regionedit.state.result.image")), res1)


def test_samples_accept_region_and_errors(page, tmp_path):
    # pick a sample: its instruction fills the box
    page.click("#samples button >> nth=0")
    page.wait_for_function("() => window.regionedit.state.source !== null")
    sample = page.evaluate("window.regionedit.state.source")
    assert page.input_value("#instruction")

    # show the region, erase part of it, accept -> the edit uses exactly that mask
    page.click("#find-region")
    page.wait_for_function("() => window.regionedit.state.region !== null")
    wait_idle(page)
    full = page.evaluate("window.regionedit.exportMask().pixels")
    page.check("#tool-erase")
    draw(page, [(5, 5), (5, 60), (60, 60)])
    erased = page.evaluate("window.regionedit.exportMask().pixels")
    assert 0 < erased < full
    page.click("#accept-region")
    page.wait_for_function("() => window.regionedit.state.turns.length === 1")
    wait_idle(page)
    r = page.evaluate("window.regionedit.state.result")
    assert r["method"] == "mask" and int((decode(r["mask"]) > 0).sum()) == erased
    src = decode(sample)
    m = decode(r["mask"]) > 0
    support = dilate(m, 6)
    assert np.array_equal(decode(r["image"])[~support], src[~support])

    # an empty instruction and a GIF upload give clear messages, nothing breaks
    page.fill("#instruction", "   ")
    page.click("#generate")
    page.wait_for_selector("#message:not([hidden])")
    assert "type an instruction" in page.locator("#message").inner_text()
    gif = tmp_path / "x.gif"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(gif)
    page.set_input_files("#file", str(gif))
    page.wait_for_function("() => document.getElementById('message').textContent.includes('only PNG, JPEG and WebP')")
    # a fake PNG (right extension, wrong bytes) is refused by the server with its message
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"GIF89a not really")
    page.expected_errors.append("status of 415")
    page.set_input_files("#file", str(fake))
    page.wait_for_function("() => document.getElementById('message').textContent.includes('not a PNG, JPEG, WebP file')")
    assert page.evaluate("window.regionedit.state.source") == sample
