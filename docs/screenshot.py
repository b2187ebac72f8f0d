"""Regenerate docs/screenshot.png: a real mask-free edit in the web UI on the bundled models.

    python docs/screenshot.py [--out docs/screenshot.png] [--sample 0] [--seed 0]

Starts `regionedit serve`'s server on loopback with the bundled shapes-64 models, opens it in Debian's
Chromium (Playwright, headless), picks a sample world image, asks for the region, generates, and saves a
screenshot of the page. Prints the instruction, the region's size and the status it got.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
from pathlib import Path

from regionedit.pipeline import Editor
from regionedit.web import WebConfig, make_server

CHROMIUM = os.environ.get("REGIONEDIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("screenshot.png"))
    p.add_argument("--sample", type=int, default=0, help="which sample button to click")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="shapes-64")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    editor = Editor.from_pretrained(args.model)
    srv = make_server(editor, "127.0.0.1", 0, WebConfig())
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
            pg = b.new_page(viewport={"width": 1280, "height": 900})
            pg.goto(srv.url)
            pg.wait_for_selector("body[data-ready='1']")
            pg.click(f"#samples button >> nth={args.sample}")
            pg.wait_for_function("() => window.regionedit.state.source !== null")
            pg.fill("#seed", str(args.seed))
            pg.click("#find-region")
            pg.wait_for_function("() => window.regionedit.state.region !== null")
            pg.wait_for_function("() => document.body.dataset.busy === '0'")
            pg.click("#generate")
            pg.wait_for_function("() => window.regionedit.state.turns.length === 1", timeout=120_000)
            pg.wait_for_function("() => document.body.dataset.busy === '0'")
            r = pg.evaluate("window.regionedit.state.result")
            print(f"instruction: {pg.input_value('#instruction')!r}\n{pg.locator('#region-info').inner_text()}\n"
                  f"status: {r['status']}  target: {r.get('target_description')!r}")
            tmp = args.out.with_suffix(".tmp.png")
            pg.screenshot(path=str(tmp), full_page=True)
            tmp.replace(args.out)
            b.close()
    finally:
        srv.shutdown()
        srv.server_close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
