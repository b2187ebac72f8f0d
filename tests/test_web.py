"""`regionedit serve` without a browser: every endpoint, every limit, path traversal, queueing, and the images
that come back (decoded, shapes, provenance metadata, pixels outside the mask identical to the source).

The server runs in a thread on 127.0.0.1 (port 0) around a tiny-random-model Editor."""

import argparse
import base64
import contextlib
import http.client
import io
import json
import shutil
import socket
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from regionedit.cli import serve as serve_cli
from regionedit.compose import dilate
from regionedit.io import MASK_KEY, mask_from_text, read_png_metadata
from regionedit.world.tiny import save_tiny_models, tiny_region_predictor
from regionedit.pipeline import Editor, EditorConfig
from regionedit.web import WebConfig, WorkQueue, make_server
from regionedit.world import sample_edit

KB = 1024


# -- fixtures and helpers -----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # keep CPU use modest
    yield
    torch.set_num_threads(n)


def _predictor(bias: float):
    return tiny_region_predictor(bias)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("tiny"), region_bias=3.0)  # region: ~the whole image


@pytest.fixture(scope="module")
def editor(tiny_dir):
    return Editor.from_pretrained(tiny_dir, config=EditorConfig(steps=2))


@contextlib.contextmanager
def running(editor, **config):
    server = make_server(editor, "127.0.0.1", 0, WebConfig(**config))
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        t.join(10)


@pytest.fixture(scope="module")
def server(editor):
    # small limits so the limit tests stay cheap
    with running(editor, max_upload_bytes=256 * KB, max_pixels=512 * 512, max_queue=8) as s:
        yield s


def request(server, method, path, body=None, headers=None, json_body=None, timeout=120):
    host, port = server.server_address[:2]
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def api(server, path, payload=None, expect=200):
    if payload is None:
        status, headers, data = request(server, "GET", path)
    else:
        status, headers, data = request(server, "POST", path, json_body=payload)
    assert headers["content-type"].startswith("application/json")
    obj = json.loads(data)
    assert status == expect, obj
    if status >= 400:
        assert set(obj) >= {"error"} and obj["error"]
    return obj


def png(arr, mode=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def url(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def decode(data_url: str) -> tuple[np.ndarray, Image.Image]:
    head, _, b64 = data_url.partition(",")
    assert head == "data:image/png;base64"
    raw = base64.b64decode(b64)
    im = Image.open(io.BytesIO(raw))
    im.load()
    assert im.format == "PNG"
    return np.asarray(im), im


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    boundary = "----regionedit-test-boundary"
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    for k, (name, ctype, data) in files.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{name}"\r\n'
                  f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def sample():
    return sample_edit(0, 2)


def _support(mask):
    h, w = mask.shape
    return dilate(mask, max(4, int(np.ceil(2 * max(h, w) / 64))) + 2)


# -- page and static files ----------------------------------------------------------------------------


def test_page_and_static_files(server):
    status, h, body = request(server, "GET", "/")
    assert status == 200 and h["content-type"].startswith("text/html")
    assert b"/static/app.js" in body and b"<canvas" in body and b"http" not in body.replace(b"http-equiv", b"")
    assert "script-src 'self'" in h["content-security-policy"] and h["x-content-type-options"] == "nosniff"
    status, h, js = request(server, "GET", "/static/app.js")
    assert status == 200 and h["content-type"].startswith("text/javascript") and b"/api/edit" in js
    status, h, css = request(server, "GET", "/static/app.css?v=1")
    assert status == 200 and h["content-type"].startswith("text/css")
    status, h, body = request(server, "HEAD", "/")
    assert status == 200 and body == b""


@pytest.mark.parametrize("path", [
    "/../../etc/passwd", "/static/../x", "/static/../../../../etc/passwd", "/static/..%2f..%2fetc%2fpasswd",
    "/static/%2e%2e/%2e%2e/etc/passwd", "/static/app.js/../../server.py", "/static/server.py", "/static/",
    "/static", "//etc/passwd", "/etc/passwd", "/..\\..\\etc\\passwd", "/static/..\\server.py",
    "/static/app.js%00.png", "/api/../static/app.js", "/web/static/app.js", "/regionedit/web/server.py",
    "/%2e%2e/%2e%2e/etc/passwd", "/index.html/..", "/api/samples/../../etc/passwd", "http://evil/etc/passwd",
])
def test_path_traversal_is_404(server, path):
    status, h, body = request(server, "GET", path)
    assert status == 404, (path, status)
    obj = json.loads(body)
    assert "no such page" in obj["error"]
    assert b"root:" not in body and b"import" not in body


def test_only_whitelisted_files(server):
    # the app holds exactly the whitelisted files, read once at start-up
    assert set(server.app._static) == {"/", "/index.html", "/static/app.js", "/static/app.css"}


def test_methods_and_unknown_routes(server, sample):
    status, h, body = request(server, "GET", "/api/edit")
    assert status == 405 and "POST" in json.loads(body)["error"] and h["allow"] == "POST"
    status, h, body = request(server, "POST", "/api/nope", json_body={})
    assert status == 404
    status, h, body = request(server, "POST", "/api/info", json_body={})
    assert status == 405
    status, h, body = request(server, "PUT", "/api/edit", body=b"{}", headers={"Content-Type": "application/json"})
    assert status == 405 and "not supported" in json.loads(body)["error"]
    status, h, body = request(server, "DELETE", "/")
    assert status == 405


# -- GET endpoints ------------------------------------------------------------------------------------


def test_info(server, tiny_dir):
    info = api(server, "/api/info")
    assert info["model"] == str(tiny_dir) and info["region_predictor"] is True
    assert info["defaults"]["steps"] == 2
    assert info["limits"]["max_upload_bytes"] == 256 * KB and info["limits"]["max_pixels"] == 512 * 512
    assert info["limits"]["types"] == ["image/jpeg", "image/png", "image/webp"]


def test_samples(server):
    out = api(server, "/api/samples")["samples"]
    assert len(out) == 6
    for s in out:
        arr, _ = decode(s["image"])
        assert arr.shape == (64, 64, 3) and arr.dtype == np.uint8 and (s["width"], s["height"]) == (64, 64)
        assert s["instruction"] and s["caption"]
    assert len({s["image"] for s in out}) == 6
    assert api(server, "/api/samples")["samples"] == out  # computed once


# -- POST /api/image ----------------------------------------------------------------------------------


def test_image_normalizes_png_jpeg_webp(server):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    out = api(server, "/api/image", {"image": url(png(img))})
    arr, _ = decode(out["image"])
    assert np.array_equal(arr, img) and (out["width"], out["height"]) == (70, 40)
    for fmt, mime in (("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt)
        out = api(server, "/api/image", {"image": url(buf.getvalue(), mime)})
        arr, _ = decode(out["image"])
        assert arr.shape == (40, 70, 3)
    # bare base64 (no data: prefix) works too; transparency is flattened onto white
    rgba = np.zeros((8, 8, 4), np.uint8)
    out = api(server, "/api/image", {"image": base64.b64encode(png(rgba)).decode()})
    assert (decode(out["image"])[0] == 255).all()


# -- POST /api/region ---------------------------------------------------------------------------------


def test_region(server, sample):
    r = api(server, "/api/region", {"image": url(png(sample.source)), "instruction": sample.instruction})
    mask, _ = decode(r["mask"])
    prob, _ = decode(r["probability"])
    ov, _ = decode(r["overlay"])
    assert mask.shape == prob.shape == (64, 64) and ov.shape == (64, 64, 3)
    assert set(np.unique(mask)) <= {0, 255} and r["found"] and r["region_pixels"] == int((mask > 0).sum())
    assert r["target_description"] and r["local_prompt"] and r["seconds"] >= 0
    # the overlay is the source outside the region
    assert np.array_equal(ov[mask == 0], sample.source[mask == 0])


def test_region_for_an_add_without_room_says_why(server):
    tiles = (np.add.outer(np.arange(64) // 8, np.arange(64) // 8) % 2).astype(bool)
    checker = np.where(tiles[..., None], np.uint8(250), np.uint8(10)).repeat(3, -1)
    r = api(server, "/api/region", {"image": url(png(checker)), "instruction": "add a large green star in the center"})
    assert not r["found"] and "no free space in the center" in r["message"] and "paint the region" in r["message"]


def test_second_instruction_reuses_image_features(server, editor, sample):
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    calls = []
    hook = editor.models.clip.vision_model.register_forward_hook(lambda *a: calls.append(1))
    try:
        api(server, "/api/region", {"image": url(png(img)), "instruction": "remove the red circle"})
        api(server, "/api/region", {"image": url(png(img)), "instruction": "make the blue square green"})
        api(server, "/api/edit", {"image": url(png(img)), "instruction": "remove the blue square", "steps": 1})
    finally:
        hook.remove()
    assert len(calls) == 1  # CLIP ran once for three requests on the same image


# -- POST /api/edit -----------------------------------------------------------------------------------


def test_edit_predicted_region_and_metadata(server, sample, tiny_dir, tmp_path):
    r = api(server, "/api/edit", {"image": url(png(sample.source)), "instruction": sample.instruction,
                                  "seed": 7, "steps": 2})
    assert r["status"] == "edited" and r["method"] == "region" and r["reason"] is None
    assert r["target_description"] and r["local_prompt"] and r["seconds"] > 0 and r["seed"] == 7 and r["steps"] == 2
    res, im = decode(r["image"])
    mask, _ = decode(r["mask"])
    assert res.shape == sample.source.shape and mask.shape == (64, 64) and decode(r["probability"])[0].shape == (64, 64)
    # provenance: the PNG's text chunks, read back with read_png_metadata like a downloaded file
    f = tmp_path / "download.png"
    f.write_bytes(base64.b64decode(r["image"].split(",", 1)[1]))
    meta = read_png_metadata(f)
    assert meta["regionedit:instruction"] == sample.instruction and meta["regionedit:seed"] == "7"
    assert meta["regionedit:model"] == str(tiny_dir) and meta["regionedit:method"] == "region"
    assert meta["regionedit:status"] == "edited" and meta["regionedit:target_description"] == r["target_description"]
    assert {k: v for k, v in meta.items() if k != MASK_KEY} == r["metadata"]
    if r["candidate_scores"]:  # several generator draws: which one was kept is in the answer and the PNG
        assert meta["regionedit:candidate"] == str(r["candidate"]) and len(r["candidate_scores"]) == 3
    else:
        assert r["candidate"] == 0 and "regionedit:candidate" not in meta
    assert np.array_equal(mask_from_text(meta[MASK_KEY]) > 0.5, mask > 0)
    # outside the (dilated) region the pixels are the source's
    sup = _support(mask > 0)
    assert np.array_equal(res[~sup], sample.source[~sup])
    # same request, same seed: same image
    r2 = api(server, "/api/edit", {"image": url(png(sample.source)), "instruction": sample.instruction,
                                   "seed": 7, "steps": 2})
    assert np.array_equal(decode(r2["image"])[0], res)


@pytest.mark.parametrize("hw", [(64, 64), (100, 173)])
def test_edit_user_mask_outside_identical(server, hw):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    m = np.zeros(hw, bool)
    m[hw[0] // 4: hw[0] // 2, hw[1] // 3: hw[1] // 2] = True
    r = api(server, "/api/edit", {"image": url(png(img)), "instruction": "remove the red circle", "seed": 3,
                                  "steps": 2, "mask": url(png(m.astype(np.uint8) * 255))})
    assert r["status"] == "edited" and r["method"] == "mask" and r["probability"] is None
    res, _ = decode(r["image"])
    got_mask = decode(r["mask"])[0] > 0
    assert res.shape == img.shape and np.array_equal(got_mask, m)
    sup = _support(m)
    assert np.array_equal(res[~sup], img[~sup])
    assert not np.array_equal(res[m], img[m])


def test_edit_mask_with_alpha_paint(server):
    """A mask painted on a transparent canvas (RGBA): transparent = keep, opaque paint = edit."""
    img = np.full((64, 64, 3), 200, np.uint8)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[10:30, 10:30] = (255, 0, 255, 255)
    r = api(server, "/api/edit", {"image": url(png(img)), "instruction": "remove the red circle", "steps": 1,
                                  "mask": url(png(rgba))})
    got = decode(r["mask"])[0] > 0
    want = np.zeros((64, 64), bool)
    want[10:30, 10:30] = True
    assert np.array_equal(got, want)


def test_edit_multipart(server, sample):
    m = np.zeros((64, 64), bool)
    m[20:40, 20:40] = True
    body, ctype = multipart({"instruction": sample.instruction, "seed": "2", "steps": "1"},
                            {"image": ("src.png", "image/png", png(sample.source)),
                             "mask": ("mask.png", "image/png", png(m.astype(np.uint8) * 255))})
    status, h, data = request(server, "POST", "/api/edit", body=body, headers={"Content-Type": ctype})
    r = json.loads(data)
    assert status == 200, r
    assert r["method"] == "mask" and r["seed"] == 2 and r["steps"] == 1
    res, _ = decode(r["image"])
    sup = _support(m)
    assert np.array_equal(res[~sup], sample.source[~sup])


def test_no_edit_is_reported(server):
    img = np.zeros((64, 64, 3), np.uint8)
    r = api(server, "/api/edit", {"image": url(png(img)), "instruction": "sing me a song"})
    assert r["status"] == "no_edit" and r["reason"]
    assert np.array_equal(decode(r["image"])[0], img)
    m = np.zeros((64, 64), np.uint8)  # an empty user mask: nothing to edit
    r = api(server, "/api/edit", {"image": url(png(img)), "instruction": "remove the red circle", "mask": url(png(m))})
    assert r["status"] == "no_edit" and "no region" in r["reason"]


# -- limits and bad input -----------------------------------------------------------------------------


def test_upload_too_big(server):
    rng = np.random.default_rng(2)
    noisy = png(rng.integers(0, 256, (400, 400, 3), dtype=np.uint8))  # ~480 KB of incompressible PNG
    assert len(noisy) > 256 * KB
    e = api(server, "/api/edit", {"image": url(noisy), "instruction": "remove the star"}, expect=413)
    assert "upload limit" in e["error"]
    body, ctype = multipart({"instruction": "remove the star"}, {"image": ("big.png", "image/png", noisy)})
    status, _, data = request(server, "POST", "/api/edit", body=body, headers={"Content-Type": ctype})
    assert status == 413 and "upload limit" in json.loads(data)["error"]


def test_request_body_too_big(server):
    limit = server.app.config.max_request_bytes
    status, h, data = request(server, "POST", "/api/edit", body=b"x" * (limit + 1),
                              headers={"Content-Type": "application/json"})
    assert status == 413 and "over the limit" in json.loads(data)["error"]


def test_too_many_pixels(server):
    big = png(np.zeros((600, 600, 3), np.uint8))  # small file, 360,000 pixels > 512*512
    assert len(big) < 256 * KB
    for path in ("/api/image", "/api/region", "/api/edit"):
        e = api(server, path, {"image": url(big), "instruction": "remove the star"}, expect=413)
        assert "max_pixels" in e["error"] and "600 x 600" in e["error"]


def test_wrong_types(server):
    gif = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(gif, format="GIF")
    bmp = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(bmp, format="BMP")
    good = png(np.zeros((8, 8, 3), np.uint8))
    for data, mime in ((gif.getvalue(), "image/gif"), (bmp.getvalue(), "image/png"), (b"hello", "text/plain"),
                       (good, "image/gif"), (good, "text/html")):
        e = api(server, "/api/edit", {"image": url(data, mime), "instruction": "remove the star"}, expect=415)
        assert "PNG, JPEG, WebP" in e["error"]
    body, ctype = multipart({"instruction": "remove the star"}, {"image": ("a.gif", "image/gif", gif.getvalue())})
    status, _, data = request(server, "POST", "/api/edit", body=body, headers={"Content-Type": ctype})
    assert status == 415
    # request content types other than JSON / multipart
    status, _, data = request(server, "POST", "/api/edit", body=b"image=1", headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in json.loads(data)["error"]


def test_bad_json_and_fields(server, sample):
    img = url(png(sample.source))
    for raw in (b"{not json", b"", b"\xff\xfe", b'{"image": "a",'):
        status, _, data = request(server, "POST", "/api/edit", body=raw, headers={"Content-Type": "application/json"})
        e = json.loads(data)
        assert status == 400 and ("JSON" in e["error"] or "UTF-8" in e["error"]), e
    status, _, data = request(server, "POST", "/api/edit", body=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert status == 400 and "JSON object" in json.loads(data)["error"]
    cases = [
        ({"image": img, "instruction": "   "}, "instruction is empty"),
        ({"image": img, "instruction": ""}, "instruction is empty"),
        ({"image": img}, "instruction is missing"),
        ({"image": img, "instruction": 5}, "instruction must be a str"),
        ({"image": img, "instruction": "x" * 501}, "over the limit"),
        ({"instruction": "remove the star"}, "image is missing"),
        ({"image": "data:image/png;base64,@@@@", "instruction": "remove the star"}, "not valid base64"),
        ({"image": 12, "instruction": "remove the star"}, "data URL"),
        ({"image": url(png(sample.source)[:300]), "instruction": "remove the star"}, "truncated"),
        ({"image": img, "instruction": "remove the star", "seed": "abc"}, "seed must be"),
        ({"image": img, "instruction": "remove the star", "seed": -1}, "seed must be"),
        ({"image": img, "instruction": "remove the star", "steps": 0}, "steps must be"),
        ({"image": img, "instruction": "remove the star", "steps": 1000}, "steps must be"),
        ({"image": img, "instruction": "remove the star", "steps": 2.5}, "steps must be"),
        ({"image": img, "instruction": "remove the star", "guidance": "nan"}, "guidance must be"),
        ({"image": img, "instruction": "remove the star", "mask": url(png(np.zeros((32, 32), np.uint8)))},
         "mask is 32x32 but the image is 64x64"),
    ]
    for payload, msg in cases:
        e = api(server, "/api/edit", payload, expect=400)
        assert msg in e["error"], (payload.keys(), e)
    e = api(server, "/api/region", {"image": img, "instruction": " \n "}, expect=400)
    assert "instruction is empty" in e["error"]


def test_missing_content_length_and_cross_origin(server, sample):
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"POST /api/edit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 411") and b"Content-Length" in data
    status, _, data = request(server, "POST", "/api/edit", json_body={"image": url(png(sample.source)), "instruction": "x"},
                              headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-origin" in json.loads(data)["error"]
    same = f"http://{host}:{port}"
    status, _, data = request(server, "POST", "/api/image", json_body={"image": url(png(sample.source))},
                              headers={"Origin": same})
    assert status == 200


def test_keep_alive_survives_errors(server, sample):
    """Several requests on one HTTP/1.1 connection, errors in between."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        for body, want in ((b"{bad", 400), (json.dumps({"image": url(png(sample.source))}).encode(), 200),
                           (b"[]", 400), (json.dumps({"image": url(png(sample.source))}).encode(), 200)):
            conn.request("POST", "/api/image", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            assert r.status == want
    finally:
        conn.close()


# -- queueing -----------------------------------------------------------------------------------------


def test_concurrent_requests_are_queued(server, sample):
    payloads = [{"image": url(png(sample.source)), "instruction": sample.instruction, "seed": i, "steps": 2}
                for i in range(4)]
    results = [None] * 4
    barrier = threading.Barrier(4)

    def go(i):
        barrier.wait()
        results[i] = request(server, "POST", "/api/edit", json_body=payloads[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None and r[0] == 200 for r in results), [r and r[0] for r in results]
    images = [decode(json.loads(r[2])["image"])[0] for r in results]
    # each equals the same request made alone (no interference between queued requests)
    alone = api(server, "/api/edit", payloads[3])
    assert np.array_equal(decode(alone["image"])[0], images[3])
    assert server.app.queue.pending == 0


def test_full_queue_gives_503(editor, sample):
    with running(editor, max_queue=2) as srv:
        payload = {"image": url(png(sample.source)), "instruction": sample.instruction, "steps": 1}
        waiting = {}
        with srv.app.queue.slot():  # the editor is busy
            t = threading.Thread(target=lambda: waiting.setdefault("r", request(srv, "POST", "/api/edit", json_body=payload)))
            t.start()
            deadline = time.time() + 30
            while srv.app.queue.pending < 2 and time.time() < deadline:
                time.sleep(0.01)
            assert srv.app.queue.pending == 2
            status, h, data = request(srv, "POST", "/api/edit", json_body=payload)
            assert status == 503 and h["retry-after"] == "5"
            assert "busy" in json.loads(data)["error"]
            status, _, data = request(srv, "POST", "/api/region", json_body=payload)
            assert status == 503
            assert api(srv, "/api/info")["queue"] == 2  # GETs do not queue
        t.join(60)
        assert waiting["r"][0] == 200 and srv.app.queue.pending == 0


def test_work_queue_is_fifo():
    q = WorkQueue(10)
    order = []
    with q.slot():
        threads = []
        for i in range(5):
            def work(i=i):
                with q.slot():
                    order.append(i)
            t = threading.Thread(target=work)
            t.start()
            threads.append(t)
            while q.pending < i + 2:
                time.sleep(0.001)
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3, 4] and q.pending == 0


# -- the CLI command ----------------------------------------------------------------------------------


def test_cli_serve_parser_and_server(tiny_dir):
    parser = argparse.ArgumentParser()
    serve_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve"])
    assert (args.host, args.port, args.model, args.func) == ("127.0.0.1", 7860, "shapes-64", serve_cli.run)
    args = parser.parse_args(["serve", "--port", "0", "--model", str(tiny_dir), "--max-upload-mb", "1", "--max-queue", "3"])
    srv = serve_cli.make_app_server(args)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        assert srv.url.startswith("http://127.0.0.1:")
        info = api(srv, "/api/info")
        assert info["model"] == str(tiny_dir) and info["limits"]["max_upload_bytes"] == 1024 * 1024
        assert info["limits"]["max_queue"] == 3
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(10)
    with pytest.raises(SystemExit, match="port"):
        serve_cli.make_app_server(parser.parse_args(["serve", "--port", "70000", "--model", str(tiny_dir)]))


def test_cli_check_editor(editor, tiny_dir, tmp_path, capsys):
    assert serve_cli.check_editor(editor) is None
    parser = argparse.ArgumentParser()
    serve_cli.add_parser(parser.add_subparsers(dest="command"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="could not load model"):
        serve_cli.make_app_server(parser.parse_args(["serve", "--port", "0", "--model", str(tmp_path / "empty")]))
    # a model folder without its instruction encoder: `regionedit serve` refuses to start, saying why
    shutil.copytree(tiny_dir, tmp_path / "noenc", ignore=lambda d, names: ["instruction_encoder"] if "region_predictor" in names else [])
    rc = serve_cli.run(parser.parse_args(["serve", "--port", "0", "--model", str(tmp_path / "noenc")]))
    err = capsys.readouterr().err
    assert rc == 1 and "cannot edit images" in err and "noenc" in err
    # started anyway (--no-check): requests that need the missing part answer 500 with the reason
    with running(Editor.from_pretrained(tmp_path / "noenc", config=EditorConfig(steps=1))) as srv:
        img = url(png(np.zeros((64, 64, 3), np.uint8)))
        e = api(srv, "/api/region", {"image": img, "instruction": "remove the red circle"}, expect=500)
        assert "could not be loaded" in e["error"] and "--model" in e["error"]
