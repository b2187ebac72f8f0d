"""`regionedit serve` without a browser: the Gradio app behind its ASGI guard (Host allow-list, same-origin only,
bounded and well-formed bodies, no 500 on malformed requests), uploads refused from their header before any
pixel is decoded, files named by path refused unless uploaded, and the UI's handlers called directly on numpy
images (mask-free edit, painted mask, find region, use result / undo, a photo's "no edit", bad input).

The app runs in-process under Starlette's TestClient around the bundled shapes-64 models (2 steps, 1 candidate)."""

import argparse
import io
import json
import shutil
import struct
import threading
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("gradio", reason="the web UI needs gradio (pip install 'regionedit[web]')")

from fastapi.testclient import TestClient  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402

from regionedit.cli import serve as serve_cli  # noqa: E402
from regionedit.io import MASK_KEY, mask_from_text, read_png_metadata  # noqa: E402
from regionedit.pipeline import Editor, EditorConfig  # noqa: E402
from regionedit.web import Session, UIError, WebConfig, WebGuard, build_app, check_image_header, make_asgi_app  # noqa: E402
from regionedit.web import handlers as web_handlers  # noqa: E402
from regionedit.web.methods import REGIONEDIT, WEB_SEED_METHODS, SeedMethods, required_files  # noqa: E402
from regionedit.web.security import ImageRefused, json_depth  # noqa: E402
from regionedit.world import render, sample_edit, sample_scene  # noqa: E402

HOST = "127.0.0.1:7860"
ORIGIN = f"http://{HOST}"
MAX_PIXELS = 300 * 300


# -- fixtures and helpers -----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # keep CPU use modest
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def editor():
    return Editor.from_pretrained("shapes-64", config=EditorConfig(steps=2, candidates=1))


@pytest.fixture(scope="module")
def blocks(editor):
    b = build_app(editor, WebConfig(max_pixels=MAX_PIXELS, max_upload_bytes=256 * 1024, max_queue=4,
                                    allowed_hosts=("studio.lan",)))
    yield b
    b.handlers.close()


@pytest.fixture(scope="module")
def client(blocks):
    with TestClient(make_asgi_app(blocks), base_url=ORIGIN, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def h(blocks):
    return blocks.handlers


@pytest.fixture(scope="module")
def world():
    s = sample_edit(0, 2)  # "... the red diamond" on a 64 x 64 scene
    return s.source, s.instruction


def png(arr, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **kw)
    return buf.getvalue()


def header_only_png(w: int, h: int) -> bytes:
    """A PNG whose header says ``w x h`` with almost no pixel data: decoding it would be refused as truncated (or
    allocate w * h * 3 bytes); only a check of the header can say "too many pixels"."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


_UPLOADED: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _remove_uploaded():
    yield
    for folder in _UPLOADED:
        shutil.rmtree(folder, ignore_errors=True)


def uploaded(data: bytes, name: str = "image.png") -> dict:
    """A file as if uploaded to Gradio: in its upload folder, named by a FileData dict."""
    folder = Path(get_upload_folder()) / f"regionedit-test-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    _UPLOADED.append(folder)
    (folder / name).write_bytes(data)
    return {"path": str(folder / name), "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def changed_outside(result: np.ndarray, source: np.ndarray, mask: np.ndarray) -> int:
    return int(((result != source).any(-1) & ~mask).sum())


def fn_index(blocks, api_name: str) -> int:
    return next(i for i, fn in blocks.fns.items() if fn.api_name == api_name)


def run_event(client, blocks, api_name: str, data: list, session_hash: str) -> dict:
    """Join Gradio's queue like the page does and read the event stream to its end: the completed message."""
    r = client.post("/gradio_api/queue/join", headers={"Origin": ORIGIN},
                    json={"data": data, "fn_index": fn_index(blocks, api_name), "session_hash": session_hash,
                          "event_data": None, "trigger_id": None})
    assert r.status_code == 200, r.text
    done = None
    with client.stream("GET", f"/gradio_api/queue/data?session_hash={session_hash}") as s:
        for line in s.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    done = msg
    assert done is not None
    return done


# -- the guard: hosts, origins --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7860", "localhost.evil.example",
                                  "127.0.0.1.nip.io:7860", "attacker.localhost.com", "0.0.0.0:7860"])
def test_host_rebinding_is_refused(client, host):
    r = client.get("/", headers={"Host": host})
    assert r.status_code == 403 and "not allowed" in r.json()["detail"] and "--allowed-hosts" in r.json()["detail"]
    r = client.post("/gradio_api/queue/join", headers={"Host": host}, json={"data": []})
    assert r.status_code == 403


@pytest.mark.parametrize("host", ["127.0.0.1:7860", "localhost:7860", "LOCALHOST", "[::1]:7860", "studio.lan:7860"])
def test_local_hosts_and_allowed_hosts_are_served(client, host):
    r = client.get("/", headers={"Host": host})
    assert r.status_code == 200 and "<html" in r.text.lower()
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp


@pytest.mark.parametrize("origin", ["null", "NULL", "http://evil.example", "http://127.0.0.1:9999", "https://127.0.0.1:7860",
                                    "http://localhost:7860", "file://", "chrome-extension://abc"])
def test_cross_origin_requests_are_refused(client, origin):
    for method, path in (("POST", "/gradio_api/queue/join"), ("GET", "/config"), ("POST", "/gradio_api/upload")):
        r = client.request(method, path, headers={"Origin": origin}, json={"data": []} if method == "POST" else None)
        assert r.status_code == 403, (origin, path, r.status_code)
        assert "cross-origin" in r.json()["detail"]


def test_same_origin_requests_pass(client, blocks, world):
    r = client.get("/config", headers={"Origin": ORIGIN})
    assert r.status_code == 200 and "components" in r.json()
    # X-Forwarded-* headers are dropped (no proxy is trusted): they cannot rewrite the URLs Gradio hands out
    r = client.get("/config", headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
    assert r.json()["root"] == ORIGIN
    # the page's own upload + queue join, with its Origin: accepted end to end
    r = client.post("/gradio_api/upload", headers={"Origin": ORIGIN},
                    files={"files": ("scene.png", png(world[0]), "image/png")})
    assert r.status_code == 200, r.text
    path = r.json()[0]
    done = run_event(client, blocks, "upload", [None, {"path": path, "orig_name": "scene.png",
                                                       "meta": {"_type": "gradio.FileData"}}], "same-origin")
    assert done["success"], done
    assert "loaded scene.png: 64x64" in json.dumps(done["output"]["data"])


def test_cross_site_fetch_metadata(client):
    r = client.get("/config", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"})
    assert r.status_code == 403
    r = client.get("/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert r.status_code == 200  # a link to the UI from elsewhere still opens it


def test_guard_unit():
    g = WebGuard(None, allowed_hosts=["Studio.LAN"])

    def check(**headers):
        return g.check_headers({"type": "http", "scheme": "http",
                                "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]})

    assert check(host="127.0.0.1:7860") is None and check(host="studio.lan") is None
    assert check()[0] == 400  # no Host at all
    assert check(host="[::1]:80", origin="http://[::1]") is None  # default port made explicit
    assert check(host="localhost", origin="http://localhost:80") is None
    assert check(host="localhost:7860", origin="http://127.0.0.1:7860")[0] == 403  # another origin, same machine
    assert json_depth(b'{"a": "[[[[[[", "b": [[1], {"c": [2]}]}') == 4
    assert json_depth(b"[" * 5000 + b"]" * 5000) == 5000


# -- the guard: bodies and methods ----------------------------------------------------------------------


def test_malformed_and_nested_json_is_4xx(client):
    deep = b"[" * 100_000 + b"]" * 100_000
    cases = [b"{not json", b"", b"\xff\xfe{}", b"[1, 2]", b'"text"', b"null", deep,
             b'{"data": ' + deep + b', "fn_index": 0, "session_hash": "x"}',
             b'{"a":' * 20_000 + b"1" + b"}" * 20_000]
    for body in cases:
        r = client.post("/gradio_api/queue/join", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body[:40], r.status_code, r.text[:200])
    r = client.post("/gradio_api/queue/join", content=deep, headers={"Content-Type": "application/json"})
    assert "nested 100000 deep" in r.json()["detail"]
    assert client.get("/").status_code == 200  # still serving


@pytest.mark.parametrize("path", ["/gradio_api/queue/join", "/gradio_api/call/upload", "/gradio_api/call/v2/edit",
                                  "/gradio_api/run/edit", "/gradio_api/api/edit", "/gradio_api/cancel",
                                  "/gradio_api/reset", "/gradio_api/component_server", "/gradio_api/upload",
                                  "/gradio_api/stream/x", "/login", "/gradio_api/nope", "/x/../../etc/passwd"])
def test_no_endpoint_answers_500_to_a_malformed_body(client, path):
    bodies = [(b"{}", "application/json"), (b'{"data": 5}', "application/json"),
              (b'{"data": [1, 2, 3], "fn_index": 99999, "session_hash": "x"}', "application/json"),
              (b'{"session_hash": "x", "component_id": 123456, "fn_name": "accept_blobs", "data": {}}', "application/json"),
              (b"--b\r\nbroken", "multipart/form-data; boundary=b"),
              (b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n', "multipart/form-data; boundary=b"),
              (b"x", "multipart/form-data"), (b"a=1", "application/x-www-form-urlencoded"), (b"hi", "text/plain")]
    for body, ctype in bodies:
        r = client.post(path, content=body, headers={"Content-Type": ctype})
        # 4xx; or accepted where the body is well-formed after all (a call naming an event is queued and its
        # error comes on the event stream; Gradio's upload route reads a multipart body without files as none)
        assert r.status_code < 500, (path, body[:30], ctype, r.status_code, r.text[:200])
        if r.status_code < 400:
            assert path.startswith("/gradio_api/call/") or (path == "/gradio_api/upload" and r.json() == []), r.text


def test_methods_and_body_limits(client, blocks):
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        r = client.request(method, "/gradio_api/queue/join")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    limit = blocks.handlers.config.max_body_bytes
    r = client.post("/gradio_api/upload", content=b"x" * (limit + 1),
                    headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and "over the limit" in r.json()["detail"]
    r = client.post("/gradio_api/queue/join", content=b'{"a": "' + b"x" * (1024 * 1024) + b'"}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = client.post("/gradio_api/queue/join", content=b"{}", headers={"Content-Type": "application/json",
                                                                      "Content-Length": "-5"})
    assert r.status_code == 400
    # a file over --max-upload-mb: refused by Gradio's upload route (max_file_size)
    big = png(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8))
    assert len(big) > 256 * 1024
    r = client.post("/gradio_api/upload", files={"files": ("big.png", big, "image/png")})
    assert r.status_code == 413, r.text
    # the event routes that would skip the queue are closed (api_open=False)
    r = client.post("/gradio_api/run/edit", json={"data": [None, "x", None, 0, 2, 4]})
    assert r.status_code == 404


@pytest.mark.parametrize("path", [
    "/gradio_api/file=/etc/passwd", "/gradio_api/file=../../../../etc/passwd", "/file=/etc/passwd",
    "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/assets/..%2f..%2f..%2fetc%2fpasswd",
    "/gradio_api/file=%2Fetc%2Fpasswd", "//etc/passwd", "/..\\..\\etc\\passwd", "/gradio_api/proxy=http://evil.example/x",
    "/gradio_api/file=" + __file__, "/svelte/../../../../etc/passwd",
])
def test_path_traversal_serves_nothing(client, path):
    r = client.get(path)
    assert r.status_code in (400, 403, 404), (path, r.status_code)
    assert b"root:" not in r.content and b"import" not in r.content


def test_forged_file_path_is_refused(client, blocks, h, tmp_path):
    """A request naming a file on the server's disk (not uploaded) must not read it: Gradio's own check (live only
    because make_asgi_app marks the mounted Blocks launched) and ours in the handlers."""
    secret = tmp_path / f"secret-{uuid.uuid4().hex}.png"
    secret.write_bytes(png(np.zeros((8, 8, 3), np.uint8)))
    done = run_event(client, blocks, "upload", [None, {"path": str(secret), "orig_name": "x.png",
                                                       "meta": {"_type": "gradio.FileData"}}], "forged")
    assert not done["success"]  # Gradio refuses it (its message is not shown: show_error=False)
    assert not list(Path(get_upload_folder()).rglob(secret.name))  # and nothing was copied into its cache
    # the same without Gradio's FileData marker reaches our handler, which checks the path itself
    done = run_event(client, blocks, "upload", [None, {"path": str(secret)}], "forged2")
    assert not done["success"] and "was not uploaded to this server" in done["output"]["error"]
    with pytest.raises(UIError, match="not uploaded"):
        h.on_upload(Session(), {"path": str(Path(get_upload_folder()) / ".." / ".." / "etc" / "passwd")})


# -- uploads: refused from the header, before decoding -----------------------------------------------------


def test_huge_header_is_refused_before_decoding(client, blocks, h, monkeypatch):
    bomb = header_only_png(20_000, 20_000)
    assert len(bomb) < 200
    decoded = []
    monkeypatch.setattr(web_handlers, "load_image", lambda *a, **k: decoded.append(1))
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    for value in (bomb, uploaded(bomb, "bomb.png")):
        with pytest.raises(UIError, match="20000 x 20000 = 400,000,000 pixels") as e:
            h.on_upload(Session(), value)
        assert "before decoding" in str(e.value) and "--max-pixels" in str(e.value)
    # under Pillow's decompression-bomb limit, over ours: Pillow's lazy open reads the size
    with pytest.raises(UIError, match="301 x 300 = 90,300 pixels"):
        h.on_upload(Session(), uploaded(header_only_png(301, 300)))
    assert decoded == []
    # through the server: uploaded, then refused by the queued event with the message
    r = client.post("/gradio_api/upload", files={"files": ("bomb.png", bomb, "image/png")})
    assert r.status_code == 200
    done = run_event(client, blocks, "upload", [None, {"path": r.json()[0], "orig_name": "bomb.png",
                                                       "meta": {"_type": "gradio.FileData"}}], "bomb")
    assert not done["success"] and "20000 x 20000" in done["output"]["error"] and decoded == []


def test_upload_types_and_damaged_files(h):
    gif = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(gif, format="GIF")
    for data in (gif.getvalue(), b"GIF89a not really", b"hello", b"<svg></svg>"):
        with pytest.raises(UIError, match="only PNG, JPEG and WebP"):
            h.on_upload(Session(), uploaded(data, "x.png"))
    with pytest.raises(UIError, match="empty"):
        h.on_upload(Session(), uploaded(b"", "x.png"))
    with pytest.raises(UIError, match="truncated"):
        h.on_upload(Session(), uploaded(png(np.zeros((32, 32, 3), np.uint8))[:60]))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    for fmt in ("PNG", "JPEG", "WEBP"):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt)
        out = h.on_upload(Session(), uploaded(buf.getvalue(), f"x.{fmt.lower()}"))
        assert out["source"].shape == (40, 70, 3) and "70x40" in out["status"]
    with pytest.raises(ImageRefused):
        check_image_header(png(img), max_pixels=100)


# -- the handlers: edits on numpy images --------------------------------------------------------------------


def test_mask_free_edit_on_a_world_image(h, world):
    src, instruction = world
    s = h.on_upload(Session(), uploaded(png(src), "scene.png"))["session"]
    assert np.array_equal(s.source, src)
    out = h.on_edit(s, instruction, None, seed=3, steps=2, guidance=4)
    s = out["session"]
    t = s.result
    assert t.status == "edited" and t.method == "region" and t.mask.any() and out["status"].startswith("edited (region)")
    assert changed_outside(t.image, src, t.mask) == 0  # every pixel outside the mask is the source's
    assert (t.image != src).any()
    assert np.array_equal(out["result"], t.image)
    ov = out["result_region"]
    assert np.array_equal(ov[~t.mask], src[~t.mask]) and not np.array_equal(ov[t.mask], src[t.mask])
    assert "1. " in out["history"] and instruction in out["history"]
    # the download: the result PNG with the provenance metadata and the mask
    meta = read_png_metadata(out["download"])
    assert np.array_equal(np.asarray(Image.open(out["download"])), t.image)
    assert meta["regionedit:instruction"] == instruction and meta["regionedit:seed"] == "3"
    assert meta["regionedit:status"] == "edited" and meta["regionedit:model"] == "shapes-64"
    assert {k: v for k, v in meta.items() if k != MASK_KEY} == t.metadata
    assert np.array_equal(mask_from_text(meta[MASK_KEY]) > 0.5, t.mask)
    # same seed, same image
    again = h.on_edit(s, instruction, None, seed=3, steps=2, guidance=4)["session"].result
    assert np.array_equal(again.image, t.image)


def test_edit_progress_follows_the_denoising_steps(h, world):
    src, instruction = world
    s = h.on_upload(Session(), uploaded(png(src), "scene.png"))["session"]
    seen = []
    h.on_edit(s, instruction, None, seed=3, steps=3, guidance=4,
              progress=lambda frac, desc=None: seen.append((round(frac, 3), desc)))
    steps = [d for _, d in seen if d and d.startswith("denoising step")]
    assert steps[:3] == ["denoising step 1 of 3", "denoising step 2 of 3", "denoising step 3 of 3"]
    fracs = [f for f, _ in seen]
    assert fracs == sorted(fracs) or len(steps) > 3  # rises (several candidates repeat the steps in one batch)


def test_find_region_then_painted_mask(h, editor, world):
    src, instruction = world
    s = h.on_upload(Session(), src)["session"]
    out = h.on_find_region(s, instruction)
    want, _ = editor.find_region(src, instruction)
    assert np.array_equal(out["session"].region, want) and "region:" in out["status"]
    assert np.array_equal(out["region"][~want], src[~want])  # the overlay is the source outside the region
    layer = out["paint"]["layers"][0]
    assert out["paint"]["background"] is s.source and layer.shape == (64, 64, 4)
    assert np.array_equal(layer[..., 3] > 0, want)
    # the user corrects it: the brush layer as the page sends it (an RGBA PNG uploaded to Gradio)
    painted = np.zeros((64, 64, 4), np.uint8)
    painted[10:26, 30:50] = (255, 0, 255, 153)
    paint = {"background": None, "composite": None, "layers": [uploaded(png(painted), "layer_0.png")]}
    t = h.on_edit(out["session"], instruction, paint, seed=1, steps=2)["session"].result
    m = painted[..., 3] > 0
    assert t.status == "edited" and t.method == "mask" and np.array_equal(t.mask, m)
    assert changed_outside(t.image, src, m) == 0 and (t.image[m] != src[m]).any()
    # a layer of another size (the canvas scaled) is brought to the image's size
    small = uploaded(png(painted[::2, ::2]), "layer_0.png")
    assert np.array_equal(h.paint_mask({"layers": [small]}, (64, 64)), m)
    # nothing painted (an empty layer): mask-free
    empty = {"layers": [uploaded(png(np.zeros((64, 64, 4), np.uint8)), "layer_0.png")]}
    assert h.paint_mask(empty, (64, 64)) is None
    with pytest.raises(UIError, match="painted region is 32x64"):
        h.paint_mask({"layers": [np.zeros((64, 32, 4), np.uint8) + 255]}, (64, 64))


def test_localizer_menu_and_region_choice(editor, world, tmp_path):
    """The page's backend picker (localizers beside the model's own) and method choice (where the region comes from)."""
    from regionedit.models.tiny_localizers import save_tiny_clipseg

    src, instruction = world
    spec = f"clipseg:{save_tiny_clipseg(tmp_path / 'clipseg')}"
    hh = web_handlers.WebHandlers(editor, WebConfig(localizers=(spec,)))
    try:
        assert hh.localizer_names == [web_handlers.OWN_LOCALIZER, spec]
        own = editor.localizer
        s = hh.on_upload(Session(), src)["session"]
        a = hh.on_find_region(s, instruction, localizer=spec)["region"]
        b = hh.on_find_region(s, instruction)["region"]
        assert editor.localizer is own  # the choice is swapped in per event and restored
        assert not np.array_equal(a, b)  # a different backend, a different region
        with pytest.raises(UIError, match="unknown localizer"):
            hh.on_find_region(s, instruction, localizer="clipseg:elsewhere")
        painted = np.zeros((64, 64, 4), np.uint8)
        painted[10:26, 30:50] = (255, 0, 255, 153)
        paint = {"layers": [painted]}
        t = hh.on_edit(s, instruction, paint, seed=1, steps=2, region_from="found")["session"].result
        assert t.method == "region"  # the painting is ignored
        with pytest.raises(UIError, match="needs a painted region"):
            hh.on_edit(s, instruction, None, seed=1, steps=2, region_from="painted")
        with pytest.raises(UIError, match="unknown region choice"):
            hh.on_edit(s, instruction, paint, region_from="somewhere")
    finally:
        hh.close()


# -- the Method picker: seed methods ------------------------------------------------------------------------


def _model_copy(dst: Path, without: tuple[str, ...] = ()) -> Path:
    """A model folder like the bundled shapes-64 (each entry a symlink to it), without the entries ``without``."""
    from regionedit.models.bundled import BUNDLED

    dst.mkdir()
    for entry in BUNDLED["shapes-64"].iterdir():
        if entry.name not in without:
            (dst / entry.name).symlink_to(entry)
    return dst


@pytest.fixture(scope="module")
def seed_sample():
    s = sample_edit(seed=7, index=5)  # "kindly take away the green triangle": the bundled predictor finds it
    return s.source, s.instruction


def test_method_menu_lists_the_seed_methods_present(blocks, h, tmp_path):
    """"regionedit" first, then only the seed methods whose files are in the served folder (nothing loaded)."""
    assert h.methods.choices == [REGIONEDIT, *WEB_SEED_METHODS] and h.methods.model == "shapes-64"
    menu = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "method")
    assert [c[0] for c in menu.choices] == h.methods.choices and menu.value == REGIONEDIT and menu.interactive
    # a copy without fireedit/ and adaptedit/: those rows are not offered
    m = SeedMethods(_model_copy(tmp_path / "m", without=("fireedit", "adaptedit")))
    assert m.choices == [REGIONEDIT, "descriptive", "descriptive-compose", "region_in_context",
                         "region_in_context-compose", "instructpix2pix"]
    # no region predictor: no -compose rows (nor FireEdit, whose region tokens need it)
    m = SeedMethods(_model_copy(tmp_path / "n", without=("region_predictor",)))
    assert m.choices == [REGIONEDIT, "descriptive", "region_in_context", "adaptedit", "instructpix2pix"]
    # no InstructPix2Pix UNet: neither the peer nor the methods that steer it (theirs is the one their configs name)
    from regionedit.models.bundled import BUNDLED

    bases = {json.loads((BUNDLED["shapes-64"] / "fireedit" / "config.json").read_text())["config"]["unet_subfolder"],
             json.loads((BUNDLED["shapes-64"] / "region_in_context" / "config.json").read_text())["unet_subfolder"]}
    m = SeedMethods(_model_copy(tmp_path / "o", without=("unet_ip2p",)))
    assert "instructpix2pix" not in m.choices
    assert ("fireedit" in m.choices) == ("unet_ip2p" not in bases)
    m = SeedMethods(_model_copy(tmp_path / "o2", without=("unet_ip2p", *bases)))
    assert not {"instructpix2pix", "fireedit", "fireedit-compose", "region_in_context"} & set(m.choices)
    # a subfolder with its config but not its weights is not offered
    folder = tmp_path / "f"
    for f in required_files("descriptive"):
        (folder / f).parent.mkdir(parents=True, exist_ok=True)
        (folder / f).write_text("{}")
    assert SeedMethods(folder).choices == [REGIONEDIT, "descriptive"]
    (folder / required_files("descriptive")[1]).unlink()
    assert SeedMethods(folder).choices == [REGIONEDIT]
    assert SeedMethods("someone/some-model").choices == [REGIONEDIT]  # a hub id: not checked, not offered
    assert SeedMethods(None).choices == [REGIONEDIT]


def test_seed_method_edit(h, seed_sample):
    """A seed method's turn: same history, undo, use result and PNG provenance as the Editor's; edited only inside
    its mask; built once and kept (the page's steps / guidance set in place, as a fresh build would have them)."""
    from regionedit.pipeline.seed_editor import SeedMethodEditor

    src, instruction = seed_sample
    s = h.on_upload(Session(), src)["session"]
    out = h.on_edit(s, instruction, None, seed=0, steps=2, guidance=4, method="fireedit-compose")
    t = out["session"].result
    assert t.status == "edited" and t.method == "fireedit-compose" and (t.seed, t.steps) == (0, 2)
    assert t.mask.any() and not t.mask.all() and (t.image != src).any()
    assert changed_outside(t.image, src, t.mask) == 0
    assert out["status"].startswith("edited (fireedit-compose): ") and "note" not in out["status"]
    assert "fireedit-compose, seed 0, 2 steps" in out["history"]
    meta = read_png_metadata(out["download"])
    assert meta["regionedit:method"] == "fireedit-compose" and meta["regionedit:model"] == "shapes-64+fireedit-compose"
    assert np.array_equal(np.asarray(Image.open(out["download"])), t.image)
    built = h.methods._editors["fireedit-compose"][0]
    again = h.on_edit(out["session"], instruction, None, seed=0, steps=3, guidance=6, method="fireedit-compose")
    assert h.methods._editors["fireedit-compose"][0] is built
    fresh = SeedMethodEditor("fireedit-compose", "shapes-64", steps=3, guidance=6.0)(src, instruction, seed=0)
    assert np.array_equal(again["session"].result.image, fresh.image) and not np.array_equal(fresh.image, t.image)
    s = again["session"]
    assert len(s.history) == 2
    s = h.on_use_result(s)["session"]
    assert np.array_equal(s.source, fresh.image)
    s = h.on_undo(h.on_undo(s)["session"])["session"]
    assert np.array_equal(s.result.image, t.image) and len(s.history) == 1


def test_instructpix2pix_peer_edits_from_the_page_and_retunes_in_place(h, seed_sample):
    """The InstructPix2Pix peer (``unet_ip2p`` alone): a global edit (its mask the whole image), the page's steps and
    guidance set on the built pipeline as a fresh build would have them."""
    from regionedit.pipeline.seed_editor import SeedMethodEditor

    src, instruction = seed_sample
    s = h.on_upload(Session(), src)["session"]
    out = h.on_edit(s, instruction, None, seed=0, steps=2, guidance=4, method="instructpix2pix")
    t = out["session"].result
    assert t.status == "edited" and t.method == "instructpix2pix" and t.mask.all() and (t.image != src).any()
    built = h.methods._editors["instructpix2pix"][0]
    again = h.on_edit(out["session"], instruction, None, seed=0, steps=3, guidance=6, method="instructpix2pix")
    assert h.methods._editors["instructpix2pix"][0] is built
    fresh = SeedMethodEditor("instructpix2pix", "shapes-64", steps=3, guidance=6.0)(src, instruction, seed=0)
    assert np.array_equal(again["session"].result.image, fresh.image) and not np.array_equal(fresh.image, t.image)


def test_seed_method_says_the_paint_is_not_used(h, seed_sample):
    src, instruction = seed_sample
    s = h.on_upload(Session(), src)["session"]
    painted = np.zeros((64, 64, 4), np.uint8)
    painted[2:10, 2:10] = (255, 0, 255, 153)
    for region_from in ("auto", "painted"):
        out = h.on_edit(s, instruction, {"layers": [painted]}, seed=0, steps=2, region_from=region_from,
                        method="region_in_context-compose")
        t = out["session"].result
        assert t.method == "region_in_context-compose" and t.status == "edited"
        assert not t.mask[2:10, 2:10].all() and changed_outside(t.image, src, t.mask) == 0  # its own region
        assert "\nnote: the painted region is not used: region_in_context-compose finds its own region" in out["status"]
    out = h.on_edit(s, instruction, None, seed=0, steps=2, method="region_in_context-compose")
    assert "note" not in out["status"]


def test_seed_method_that_cannot_load_says_why(editor, seed_sample, tmp_path):
    src, instruction = seed_sample
    hh = web_handlers.WebHandlers(editor)
    try:
        folder = _model_copy(tmp_path / "model")
        hh.methods = SeedMethods(folder)
        assert "fireedit-compose" in hh.methods.choices
        (folder / "fireedit").unlink()  # the weights went away after the page was built
        s = hh.on_upload(Session(), src)["session"]
        out = hh.on_edit(s, instruction, None, seed=0, steps=2, method="fireedit-compose")
        assert set(out) == {"status"}  # the session (and its history) is left as it was
        st = out["status"]
        assert st.startswith("no edit: method 'fireedit-compose' could not be loaded: ") and "Traceback" not in st
        assert "no trained FireEdit weights" in st and "regionedit train fireedit" in st
        assert "fireedit-compose" not in hh.methods._editors
        with pytest.raises(UIError, match="unknown method 'adaptedit-no_gate'"):  # an ablation: not offered
            hh.on_edit(s, instruction, None, method="adaptedit-no_gate")
        with pytest.raises(UIError, match="unknown method"):
            hh.on_edit(s, instruction, None, method="nonsense")
    finally:
        hh.close()


def test_use_result_and_undo(h, world):
    src, instruction = world
    s = h.on_upload(Session(), src)["session"]
    with pytest.raises(UIError, match="nothing to undo"):
        h.on_undo(s)
    with pytest.raises(UIError, match="no edited result"):
        h.on_use_result(s)
    s = h.on_edit(s, instruction, None, seed=0)["session"]
    r1 = s.result.image
    m = np.zeros((64, 64), bool)
    m[40:60, 5:25] = True
    s = h.on_edit(s, "add a blue star", m, seed=1)["session"]  # a second try on the same source, painted
    r2 = s.result.image
    out = h.on_use_result(s)
    s = out["session"]
    assert np.array_equal(s.source, r2) and s.result is None and out["result"] is None
    assert np.array_equal(out["paint"]["background"], r2) and len(s.history) == 2
    s = h.on_edit(s, "remove the blue star", np.roll(m, 10, axis=1), seed=2)["session"]  # edit the edited image
    assert np.array_equal(s.result.source, r2) and len(s.history) == 3
    s = h.on_undo(s)["session"]  # the third edit undone: back on the result of the second
    assert np.array_equal(s.source, r2) and s.result is None and len(s.history) == 2
    out = h.on_undo(s)  # "use result" undone: the original source, with the second result shown
    s = out["session"]
    assert np.array_equal(s.source, src) and np.array_equal(s.result.image, r2) and np.array_equal(out["result"], r2)
    s = h.on_undo(s)["session"]
    assert np.array_equal(s.result.image, r1) and len(s.history) == 1 and "2. " not in h._history(s)
    s = h.on_undo(s)["session"]
    assert s.result is None and s.history == [] and np.array_equal(s.source, src)


def test_undo_memory_is_bounded():
    """The undo stack keeps at most max_history steps and max_history_mb of images (the oldest go first)."""
    s = Session(source=np.zeros((512, 512, 3), np.uint8))  # 0.75 MB
    for i in range(10):
        s.push(max_steps=6, max_bytes=3 * 1024 * 1024)
        s.source = np.full((512, 512, 3), i, np.uint8)
    assert len(s.undo_stack) == 4 and s.undo_bytes() <= 3 * 1024 * 1024
    assert s.undo_stack[-1][0][0, 0, 0] == 8
    s.push(max_steps=6, max_bytes=1)  # over budget: the last step is still kept
    assert len(s.undo_stack) == 1


def test_photo_gets_the_no_edit_message(h):
    from skimage import data

    photo = np.ascontiguousarray(data.astronaut()[::2, ::2])  # 256 x 256, under this app's pixel limit
    s = h.on_upload(Session(), uploaded(png(photo), "astronaut.png"))["session"]
    out = h.on_edit(s, "replace the cat with a dog", None)
    assert out["status"].startswith("no edit: ") and "--domain-guard off" in out["status"] and "--generator" in out["status"]
    assert out["download"] is None and np.array_equal(out["result"], photo)
    assert "no_edit" in out["history"]


def test_no_region_and_not_understood_say_why(h):
    tiles = (np.add.outer(np.arange(64) // 8, np.arange(64) // 8) % 2).astype(bool)
    checker = np.where(tiles[..., None], np.uint8(250), np.uint8(10)).repeat(3, -1)
    s = h.on_upload(Session(), checker)["session"]
    out = h.on_find_region(s, "add a large green star in the center")
    assert "no free space" in out["status"] and "paint the region yourself" in out["status"]
    out = h.on_edit(h.on_example(Session(), 0)["session"], "sing me a song", None)
    assert out["status"].startswith("no edit: ") and out["session"].result.status == "no_edit"


def test_world_image_of_any_shape(h):
    img = render(sample_scene(np.random.default_rng(2)), (64, 128))  # a purple star and a white circle
    s = h.on_upload(Session(), img)["session"]
    t = h.on_edit(s, "make the purple star green", None, seed=0)["session"].result
    assert t.status == "edited" and t.image.shape == (64, 128, 3) and changed_outside(t.image, img, t.mask) == 0


def test_examples_and_bad_input(h, editor):
    out = h.on_example(Session(), 2)
    img, instruction = h.examples()[2]
    assert np.array_equal(out["source"], img) and out["instruction"] == instruction and img.shape == (64, 64, 3)
    assert len(h.examples()) == 6 and len({e[1] for e in h.examples()}) == 6
    s = out["session"]
    for args, msg in [((Session(), "remove the red circle"), "upload an image first"),
                      ((s, "   "), "type an instruction"), ((s, None), "type an instruction"),
                      ((s, "x" * 501), "over the limit"), ((s, "remove it", None, -1), "seed must be"),
                      ((s, "remove it", None, "abc"), "seed must be"), ((s, "remove it", None, 0, 0), "steps must be"),
                      ((s, "remove it", None, 0, 101), "steps must be"), ((s, "remove it", None, 0, 2.5), "steps must be"),
                      ((s, "remove it", None, 0, 2, float("nan")), "guidance must be"),
                      ((s, "remove it", "a string"), "painted region could not be read")]:
        with pytest.raises(UIError, match=msg):
            h.on_edit(*args)
    with pytest.raises(UIError, match="example must be"):
        h.on_example(Session(), 99)
    out = h.on_clear_source(s)  # the page's X on the source image: start over
    assert out["session"].source is None and out["paint"] is None and out["result"] is None
    # an editor without a localizer: paint the region, or be told to
    localizer, editor.localizer = editor.localizer, None
    try:
        with pytest.raises(UIError, match="no localizer"):
            h.on_find_region(s, "remove the red circle")
        with pytest.raises(UIError, match="paint the region"):
            h.on_edit(s, "remove the red circle", None)
    finally:
        editor.localizer = localizer


def test_full_flow_through_the_queue(client, blocks, world):
    """upload -> find region -> edit -> use result -> undo, each event through Gradio's queue like the page."""
    src, instruction = world
    r = client.post("/gradio_api/upload", files={"files": ("scene.png", png(src), "image/png")})
    up = {"path": r.json()[0], "orig_name": "scene.png", "meta": {"_type": "gradio.FileData"}}
    sh = "flow"
    assert run_event(client, blocks, "upload", [None, up], sh)["success"]
    done = run_event(client, blocks, "find_region", [None, instruction, "model's own"], sh)
    assert done["success"] and "region:" in json.dumps(done["output"]["data"])
    done = run_event(client, blocks, "edit", [None, instruction, None, 5, 2, 4.0, "model's own", "auto", REGIONEDIT],
                     sh)
    assert done["success"], done
    text = json.dumps(done["output"]["data"])
    assert "edited (" in text and "regionedit-edit-1.png" in text
    done = run_event(client, blocks, "edit", [None, instruction, None, 5, 2, 4.0, "model's own", "auto",
                                              "fireedit-compose"], sh)
    assert done["success"], done
    text = json.dumps(done["output"]["data"])
    assert "edited (fireedit-compose)" in text and "regionedit-edit-2.png" in text
    assert run_event(client, blocks, "undo", [None], sh)["success"]  # back to the first edit
    assert run_event(client, blocks, "use_result", [None], sh)["success"]
    assert run_event(client, blocks, "undo", [None], sh)["success"]
    done = run_event(client, blocks, "undo", [None], sh)
    assert done["success"]
    done = run_event(client, blocks, "undo", [None], sh)
    assert not done["success"] and "nothing to undo" in done["output"]["error"]


def test_full_queue_is_refused(editor):
    """One model event running, ``max_queue`` waiting: the next is refused at once (HTTP 503, "queue full")."""
    b = build_app(editor, WebConfig(max_queue=2))
    gate, running = threading.Event(), threading.Event()
    find = b.handlers.on_find_region

    def slow(*a, **k):
        running.set()
        gate.wait(60)
        return find(*a, **k)

    b.handlers.on_find_region = slow
    join = {"fn_index": fn_index(b, "find_region"), "event_data": None, "trigger_id": None}
    try:
        with TestClient(make_asgi_app(b), base_url=ORIGIN) as c:
            def post(i):
                data = [None, "x", "model's own"]
                return c.post("/gradio_api/queue/join", json={**join, "data": data, "session_hash": f"q{i}"})

            assert post(0).status_code == 200
            assert running.wait(60)
            assert post(1).status_code == 200 and post(2).status_code == 200  # waiting
            r = post(3)
            assert r.status_code == 503 and "Queue is full" in r.json()["detail"]
            gate.set()
            for i in range(3):  # the queued ones run (and fail: no image in their sessions)
                with c.stream("GET", f"/gradio_api/queue/data?session_hash=q{i}") as s:
                    assert "upload an image first" in "".join(s.iter_lines())
    finally:
        gate.set()
        b.handlers.close()


def test_queue_and_limits_are_configured(blocks):
    q = blocks._queue
    assert q.max_size == 4 and q.default_concurrency_limit == 1 and blocks.max_file_size == 256 * 1024
    model = [fn for fn in blocks.fns.values() if fn.api_name in ("edit", "find_region")]
    assert len(model) == 2 and {fn.concurrency_id for fn in model} == {"model"}
    assert all(fn.queue for fn in blocks.fns.values())
    assert blocks.state_session_capacity == 64 and blocks.has_launched


# -- the CLI command ----------------------------------------------------------------------------------------


def test_cli_serve(editor):
    parser = argparse.ArgumentParser()
    serve_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve"])
    assert (args.host, args.port, args.model, args.concurrency, args.max_queue, args.allowed_hosts, args.func) == \
        ("127.0.0.1", 7860, None, 1, 8, [], serve_cli.run)
    args = parser.parse_args(["serve", "--port", "0", "--max-pixels", "4096", "--max-queue", "3", "--concurrency", "2",
                              "--allowed-hosts", "box.lan", "10.0.0.5", "--max-upload-mb", "1"])
    srv = serve_cli.make_app_server(args, editor)
    with srv:
        assert srv.url.startswith("http://127.0.0.1:")
        c = srv.blocks.handlers.config
        assert (c.max_pixels, c.max_queue, c.concurrency, c.allowed_hosts) == (4096, 3, 2, ("box.lan", "10.0.0.5"))
        assert c.max_upload_bytes == 1024 * 1024
        import httpx

        assert httpx.get(srv.url, timeout=30).status_code == 200
        assert httpx.get(srv.url, headers={"Host": "box.lan"}, timeout=30).status_code == 200
        assert httpx.get(srv.url, headers={"Host": "evil.example"}, timeout=30).status_code == 403
    with pytest.raises(SystemExit, match="port"):
        serve_cli.make_app_server(parser.parse_args(["serve", "--port", "70000"]), editor)
    assert serve_cli.check_editor(editor) is None
