"""Fault suite (issue 33): bad inputs tried against the real ``regionedit`` CLI, one markdown row each.

    python benchmarks/faults.py            # the whole table (a few minutes on 2 CPU cores)
    python benchmarks/faults.py --only files,cli

Every row runs ``regionedit`` in a subprocess (``python -m regionedit.cli.main``) on a tiny random model folder
(``regionedit.world.tiny.save_tiny_models``), all inside a temporary folder; the outcome column is what that run
did. A row is *handled* when its outcome is one the row accepts: a clear error (usage error naming the flag, or
status "error" with a reason), or, for valid-but-unusual files, a correct edit (an output PNG of the displayed
size and the right mode). A traceback, or "edited" on garbage, is *not handled*, and the script exits 1.

Rows: files (truncated, empty, text named .png, 16-bit, CMYK, palette, RGBA, EXIF-rotated, decompression-bomb
header, over --max-pixels), CLI values, batch lines, weights (NaN UNet, truncated safetensors), a pickle payload
checkpoint under ``regionedit train region --out``, kill -9 of an edit batch followed by ``--resume``, and HTTP
requests to the web UI (Host rebinding, Origin null / foreign, cross-site, malformed and deeply nested JSON, an
oversize body, a wrong method, path traversal, an upload whose header promises 400 megapixels). The load test of
the web UI is ``benchmarks/web_load.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

FAST = ["--steps", "1", "--priors", "off", "--candidates", "1", "--json"]


@dataclass
class Result:
    kind: str
    input: str
    outcome: str  # edited / no_edit / error / skipped / usage error / refused / traceback / ...
    code: str  # exit code and status
    message: str
    handled: bool
    extra: dict = field(default_factory=dict)

    def row(self, work: str | None = None) -> str:
        msg = self.message.replace(work, "<tmp>") if work else self.message
        msg = " ".join(msg.split())[:100].replace("|", "\\|")
        mark = "" if self.handled else " **NOT HANDLED**"
        return f"| {self.kind} | {self.input} | {self.outcome}{mark} | {self.code} | {msg} |"


# ------------------------------------------------------------------------------------------------ running


def cli(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "regionedit.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def records(proc) -> list[dict]:
    out = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def last_error_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip() and not x.startswith(("[transformers]", "Writing model"))]
    return lines[-1] if lines else ""


def classify(proc, rec: dict | None = None) -> tuple[str, str, str]:
    """(outcome, code, message) of one CLI run (or one batch record ``rec`` of it)."""
    if "Traceback (most recent call last)" in proc.stderr:
        return "traceback", f"exit {proc.returncode}", last_error_line(proc.stderr)
    if rec is None:
        recs = records(proc)
        rec = recs[-1] if recs else None
    if rec is not None:
        return rec["status"], f"exit {proc.returncode} / {rec['status']}", rec.get("reason") or ""
    if proc.returncode == 2 and "error:" in proc.stderr:
        return "usage error", "exit 2", last_error_line(proc.stderr).split("error: ", 1)[-1]
    return ("refused" if proc.returncode else "exit 0, no record"), f"exit {proc.returncode}", last_error_line(proc.stderr)


def edit(model: Path, image: Path, out: Path, *extra) -> subprocess.CompletedProcess:
    return cli("edit", image, "remove the red circle", "-o", out, "--model", model, *FAST, *extra)


# ------------------------------------------------------------------------------------------------ files


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries no pixel data (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")


def base_image(h: int = 64, w: int = 64) -> np.ndarray:
    from regionedit.world import sample_edit

    a = sample_edit(0, 2).source
    return a if (h, w) == a.shape[:2] else np.asarray(Image.fromarray(a).resize((w, h)))


def make_file(kind: str, folder: Path) -> tuple[Path, dict]:
    """Write the bad/unusual file ``kind``; returns (path, expectation) where expectation is
    {"ok": "edit", "size": (w, h), "mode": m} for valid files or {"ok": "error", "words": [...]} for bad ones."""
    a = base_image()
    p = folder / f"{kind}.png"
    if kind == "truncated PNG":
        Image.fromarray(a).save(p)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        return p, {"ok": "error", "words": ["truncated"]}
    if kind == "empty file":
        p.write_bytes(b"")
        return p, {"ok": "error", "words": ["empty"]}
    if kind == "text file named .png":
        p.write_text("this is not an image\n")
        return p, {"ok": "error", "words": ["image"]}
    if kind == "16-bit PNG":
        Image.fromarray((a[..., 0].astype(np.uint16) * 257)).save(p)
        assert Image.open(p).mode.startswith("I")
        return p, {"ok": "edit", "size": (64, 64), "mode": "RGB"}
    if kind == "CMYK JPEG":
        p = folder / "cmyk.jpg"
        Image.fromarray(a).convert("CMYK").save(p, "JPEG", quality=95)
        return p, {"ok": "edit", "size": (64, 64), "mode": "RGB"}
    if kind == "palette PNG":
        Image.fromarray(a).quantize(16).save(p)
        return p, {"ok": "edit", "size": (64, 64), "mode": "RGB"}
    if kind == "RGBA PNG":
        alpha = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (64, 1))
        Image.fromarray(np.dstack([a, alpha]), "RGBA").save(p)
        return p, {"ok": "edit", "size": (64, 64), "mode": "RGBA", "alpha": alpha}
    if kind == "EXIF-rotated JPEG":
        p = folder / "rot.jpg"
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 CW to display: stored 64 x 48 (w x h) displays as 48 x 64
        Image.fromarray(base_image(48, 64)).save(p, "JPEG", exif=exif, quality=95)
        return p, {"ok": "edit", "size": (48, 64), "mode": "RGB"}
    if kind == "decompression bomb header":
        p.write_bytes(png_header_only(100_000, 100_000))
        return p, {"ok": "error", "words": ["too large"]}
    if kind == "4200x4200 image (17.6 MP) vs default --max-pixels":
        Image.new("RGB", (4200, 4200), (200, 30, 30)).save(p)
        return p, {"ok": "error", "words": ["--max-pixels"]}
    raise KeyError(kind)


FILE_KINDS = ["truncated PNG", "empty file", "text file named .png", "16-bit PNG", "CMYK JPEG", "palette PNG",
              "RGBA PNG", "EXIF-rotated JPEG", "decompression bomb header",
              "4200x4200 image (17.6 MP) vs default --max-pixels"]


def check_edit_output(out: Path, exp: dict) -> str:
    """'' if ``out`` is a correct edit for expectation ``exp``, else what is wrong."""
    if not out.exists():
        return "no output file"
    with Image.open(out) as im:
        if im.format != "PNG" or im.size != exp["size"] or im.mode != exp["mode"]:
            return f"output {im.format} {im.size} {im.mode}, expected PNG {exp['size']} {exp['mode']}"
        arr = np.asarray(im)
    if "alpha" in exp and not np.array_equal(arr[..., 3], exp["alpha"]):
        return "alpha channel changed"
    return ""


def file_row(model: Path, work: Path, kind: str) -> Result:
    folder = work / "files" / kind.replace(" ", "_").replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    src, exp = make_file(kind, folder)
    out = folder / "out.png"
    proc = edit(model, src, out)
    outcome, code, msg = classify(proc)
    if exp["ok"] == "edit":
        bad = check_edit_output(out, exp) if outcome == "edited" else "not edited"
        handled = outcome == "edited" and proc.returncode == 0 and not bad
        if outcome == "edited":
            msg = msg or (f"correct edit: {exp['size'][0]}x{exp['size'][1]} {exp['mode']} PNG" if not bad else bad)
    else:
        handled = (outcome == "error" and proc.returncode != 0 and not out.exists()
                   and all(w.lower() in msg.lower() for w in exp["words"]))
    return Result("file", kind, outcome, code, msg, handled)


# ------------------------------------------------------------------------------------------------ CLI values

CLI_CASES = {
    "--steps -3": (["--steps", "-3"], "--steps"),
    "--steps 0": (["--steps", "0"], "--steps"),
    "--guidance nan": (["--guidance", "nan"], "--guidance"),
    "--seed 2**70": (["--seed", str(2**70)], "--seed"),
    "-o equal to the input": (None, "input"),
    "-o X --mask-out X": (None, "--mask-out"),
}


def cli_row(model: Path, work: Path, case: str) -> Result:
    folder = work / "cli" / case.replace(" ", "_").replace("*", "")
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "in.png"
    Image.fromarray(base_image()).save(src)
    before = src.read_bytes()
    flags, word = CLI_CASES[case]
    out = folder / "out.png"
    if case == "-o equal to the input":
        proc = cli("edit", src, "remove the red circle", "-o", src, "--overwrite", "--model", model, *FAST)
    elif case == "-o X --mask-out X":
        proc = cli("edit", src, "remove the red circle", "-o", out, "--mask-out", out, "--overwrite", "--model",
                   model, *FAST)
    else:
        # steps/guidance/seed flags come after FAST so they override it
        proc = cli("edit", src, "remove the red circle", "-o", out, "--model", model, *FAST, *flags)
    outcome, code, msg = classify(proc)
    handled = (proc.returncode != 0 and outcome in ("usage error", "error", "refused") and word in msg
               and src.read_bytes() == before and not out.exists())
    return Result("CLI value", f"`{case}`", outcome, code, msg, handled)


# ------------------------------------------------------------------------------------------------ batch lines


def unwritable_output(folder: Path) -> Path:
    """An output path that cannot be written, for root too: its parent folder is a regular file."""
    blocker = folder / "not_a_folder"
    blocker.write_text("a file, not a folder\n")
    return blocker / "out.png"


BATCH_CASES = ["valid job (control)", "malformed JSON", "non-object line `[1, 2, 3]`", '`"seed": null`',
               'missing key (no "instruction")', "unwritable output", "valid job after the bad ones"]


def batch_rows(model: Path, work: Path, cases: list[str] | None = None) -> list[Result]:
    cases = cases or BATCH_CASES
    folder = work / "batch"
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "in.png"
    Image.fromarray(base_image()).save(src)
    job = {"image": str(src), "instruction": "remove the red circle"}
    make = {
        "valid job (control)": lambda: json.dumps(job | {"output": str(folder / "a.png")}),
        "malformed JSON": lambda: '{"image": "x.png", "instruction": "remove the star", ',
        "non-object line `[1, 2, 3]`": lambda: "[1, 2, 3]",
        '`"seed": null`': lambda: json.dumps(job | {"output": str(folder / "n.png"), "seed": None}),
        'missing key (no "instruction")': lambda: json.dumps({"image": str(src), "output": str(folder / "k.png")}),
        "unwritable output": lambda: json.dumps(job | {"output": str(unwritable_output(folder))}),
        "valid job after the bad ones": lambda: json.dumps(job | {"output": str(folder / "b.png"), "seed": 5}),
    }
    lines = [make[c]() for c in cases]
    jl = folder / "jobs.jsonl"
    jl.write_text("\n".join(lines) + "\n")
    proc = cli("edit", "--batch", jl, "--model", model, *FAST)
    recs = {r.get("line"): r for r in records(proc)}
    results = []
    for i, case in enumerate(cases, 1):
        rec = recs.get(i)
        if rec is None:
            outcome, code, msg = classify(proc, None) if "Traceback (most recent" in proc.stderr else (
                "no record", f"exit {proc.returncode}", "line not reported")
        else:
            outcome, code, msg = classify(proc, rec)
        if case.startswith("valid"):
            handled = outcome == "edited" and Path(rec["output"]).exists() if rec else False
            msg = msg or ("output written" if handled else msg)
        else:
            handled = outcome == "error" and bool(msg) and proc.returncode != 0
        results.append(Result("batch line", case, outcome, f"{code} (line {i})", msg, handled))
    return results


# ------------------------------------------------------------------------------------------------ weights


def weights_row(model: Path, work: Path, case: str) -> Result:
    folder = work / "weights" / case.split()[0]
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(model, folder / "model")
    bad = folder / "model"
    if case == "NaN UNet weights":
        import torch
        from safetensors.torch import load_file, save_file

        for sub in ("unet", "unet_inpaint"):
            f = bad / sub / "diffusion_pytorch_model.safetensors"
            save_file({k: v.clone().fill_(float("nan")) if v.is_floating_point() else v
                       for k, v in load_file(f).items()}, f)
        del torch
    elif case == "truncated safetensors (unet_inpaint)":
        f = bad / "unet_inpaint" / "diffusion_pytorch_model.safetensors"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    else:
        raise KeyError(case)
    src = folder / "in.png"
    Image.fromarray(base_image()).save(src)
    out = folder / "out.png"
    proc = edit(bad, src, out)
    outcome, code, msg = classify(proc)
    handled = proc.returncode != 0 and outcome in ("error", "refused") and bool(msg) and not out.exists()
    return Result("weights", case, outcome, code, msg, handled)


# ------------------------------------------------------------------------------------------------ checkpoints


class Payload:
    """Unpickling this runs ``exec``: it creates ``marker`` (what a malicious checkpoint would do)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def checkpoint_row(model: Path, work: Path) -> Result:
    import torch

    out = work / "ckpt" / "run"
    marker = work / "ckpt" / "PWNED"
    state = out / "region" / "state.pt"
    state.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"step": 7, "seconds": 1.0, "model": {}, "x": Payload(str(marker))}, state)
    proc = cli("train", "region", "--model", model, "--out", out, "--max-steps", "1", "--batch", "1",
               "--threads", "1", "--no-clip-text", timeout=900)
    outcome, code, msg = classify(proc)
    if outcome != "traceback" and marker.exists():
        outcome, msg = "payload ran", f"the pickle's code ran (created {marker.name}); " + msg
    handled = proc.returncode != 0 and outcome == "refused" and not marker.exists() and str(state) in proc.stderr
    return Result("checkpoint", "pickle payload `state.pt` under `train region --out`", outcome, code, msg, handled)


# ------------------------------------------------------------------------------------------------ kill -9


def kill9_row(model: Path, work: Path, jobs: int = 8, kill_after: int = 2) -> Result:
    """Start an edit batch of ``jobs`` jobs, kill -9 it once ``kill_after`` outputs exist, rerun --resume."""
    folder = work / "kill9"
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "in.png"
    Image.fromarray(base_image()).save(src)
    outs = [folder / f"o{i}.png" for i in range(jobs)]
    jl = folder / "jobs.jsonl"
    jl.write_text("".join(json.dumps({"image": str(src), "instruction": "remove the red circle", "output": str(o),
                                      "mask_out": str(folder / f"m{i}.png"), "seed": i}) + "\n"
                          for i, o in enumerate(outs)))
    args = [sys.executable, "-m", "regionedit.cli.main", "edit", "--batch", str(jl), "--model", str(model),
            "--steps", "4", "--priors", "off", "--candidates", "1", "--json"]
    env = dict(os.environ, PYTHONWARNINGS="ignore", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and sum(o.exists() for o in outs) < kill_after:
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    finished = {o: o.read_bytes() for o in outs if o.exists()}
    tmp_before = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    rerun = cli(*args[3:], "--resume")
    recs = records(rerun)
    status = {Path(r["output"]): r["status"] for r in recs if r.get("output")}
    lost = sum(1 for o, b in finished.items() if not o.exists() or o.read_bytes() != b)
    duplicated = sum(1 for o in finished if status.get(o) == "edited")
    redone = sum(1 for o in outs if o not in finished and status.get(o) == "edited")
    missing = sum(1 for o in outs if not o.exists())
    tmp_after = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    outcome = "traceback" if "Traceback (most recent" in rerun.stderr else (
        f"{len(finished)} finished before kill; lost {lost}, redone {redone}, duplicated {duplicated}")
    msg = (f"killed={killed}; resume: {sum(s == 'skipped' for s in status.values())} skipped, "
           f"{sum(s == 'edited' for s in status.values())} edited, {missing} missing; "
           f"stale .tmp {len(tmp_before)} -> {len(tmp_after)}")
    handled = (killed and rerun.returncode == 0 and lost == 0 and duplicated == 0 and missing == 0
               and redone == jobs - len(finished) and not tmp_after)
    return Result("kill -9", f"`edit --batch` ({jobs} jobs) killed after {len(finished)} outputs, then `--resume`",
                  outcome, f"exit {rerun.returncode}", msg, handled,
                  {"finished": len(finished), "lost": lost, "redone": redone, "duplicated": duplicated})


# ------------------------------------------------------------------------------------------------ main

HTTP_CASES = {  # name -> (method, path, headers, body, expected statuses); the web UI's ASGI app (regionedit serve)
    "control: GET / from localhost": ("GET", "/", {}, None, {200}),
    "Host rebinding (Host: evil.example)": ("GET", "/", {"Host": "evil.example"}, None, {403}),
    "`Origin: null` POST": ("POST", "/gradio_api/queue/join", {"Origin": "null"}, b'{"data": []}', {403}),
    "foreign Origin POST": ("POST", "/gradio_api/queue/join", {"Origin": "http://evil.example"}, b'{"data": []}',
                            {403}),
    "cross-site fetch (Sec-Fetch-Site)": ("GET", "/config", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"},
                                          None, {403}),
    "malformed JSON body": ("POST", "/gradio_api/queue/join", {}, b'{"data": [1, 2', {400}),
    "JSON nested 10,000 deep": ("POST", "/gradio_api/queue/join", {}, b"[" * 10000 + b"]" * 10000, {400}),
    "2 MB JSON body": ("POST", "/gradio_api/queue/join", {}, b'{"a": "' + b"x" * (2 << 20) + b'"}', {413}),
    "PUT method": ("PUT", "/gradio_api/queue/join", {}, b"{}", {405}),
    "path traversal /gradio_api/file=/etc/passwd": ("GET", "/gradio_api/file=/etc/passwd", {}, None,
                                                    {400, 403, 404}),
    "upload whose header says 20000x20000": ("UPLOAD", "/gradio_api/upload", {}, None, {200, 400, 413}),
}


def http_rows(model: Path, work: Path) -> list[Result]:
    """Each HTTP case against the web UI's ASGI app (Gradio behind WebGuard) in process, through starlette's
    TestClient; the bomb upload is then given to the edit handler, which must refuse it from its header."""
    from starlette.testclient import TestClient

    from regionedit.pipeline import Editor, EditorConfig
    from regionedit.web.app import build_app
    from regionedit.web.server import make_asgi_app

    editor = Editor.from_pretrained(str(model), config=EditorConfig(steps=1, candidates=1))
    blocks = build_app(editor)
    origin = "http://127.0.0.1:7860"
    out = []
    with TestClient(make_asgi_app(blocks), base_url=origin, raise_server_exceptions=False) as client:
        for name, (method, path, headers, body, ok) in HTTP_CASES.items():
            try:
                if method == "UPLOAD":
                    r = client.post(path, headers={"Origin": origin},
                                    files={"files": ("bomb.png", png_header_only(20000, 20000), "image/png")})
                    refused = ""
                    if r.status_code == 200:  # stored, not decoded: the handler must refuse it from the header
                        stored = r.json()[0]
                        try:
                            blocks.handlers.decode_upload(stored)
                            refused = "DECODED"
                        except Exception as e:  # the refusal the UI shows
                            refused = str(e)
                    handled = r.status_code in ok and refused != "DECODED"
                    out.append(Result("http", name, "refused" if handled else "decoded", str(r.status_code),
                                      refused or r.text[:100], handled))
                    continue
                hdrs = {"Content-Type": "application/json", **headers} if body is not None else headers
                r = client.request(method, path, headers=hdrs, content=body)
                outcome = "served" if r.status_code < 300 else f"refused ({r.status_code})"
                out.append(Result("http", name, outcome, str(r.status_code), r.text[:100], r.status_code in ok))
            except Exception as e:  # a crash of the app is not handled
                out.append(Result("http", name, "exception", "-", f"{type(e).__name__}: {e}", False))
    return out


SECTIONS = ["files", "cli", "batch", "weights", "checkpoints", "kill9", "http"]


def run_all(model: Path, work: Path, sections=SECTIONS, log=print) -> list[Result]:
    results: list[Result] = []

    def add(r):
        results.extend(r if isinstance(r, list) else [r])
        for x in (r if isinstance(r, list) else [r]):
            log(f"  {x.kind}: {x.input} -> {x.outcome}{'' if x.handled else ' (NOT HANDLED)'}", file=sys.stderr)

    if "files" in sections:
        for k in FILE_KINDS:
            add(file_row(model, work, k))
    if "cli" in sections:
        for c in CLI_CASES:
            add(cli_row(model, work, c))
    if "batch" in sections:
        add(batch_rows(model, work))
    if "weights" in sections:
        for c in ("NaN UNet weights", "truncated safetensors (unet_inpaint)"):
            add(weights_row(model, work, c))
    if "checkpoints" in sections:
        add(checkpoint_row(model, work))
    if "kill9" in sections:
        add(kill9_row(model, work))
    if "http" in sections:
        add(http_rows(model, work))
    return results


def table(results: list[Result], work: str | None = None) -> str:
    head = ["| kind | input | outcome | exit code / status | message (first 100 chars) |", "|---|---|---|---|---|"]
    return "\n".join(head + [r.row(work) for r in results])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    args = ap.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="regionedit-faults-") as tmp:
        from regionedit.world.tiny import save_tiny_models

        work = Path(tmp)
        model = save_tiny_models(work / "tiny", region_bias=3.0)
        results = run_all(model, work, sections)
    print(table(results, str(work)))
    bad = [r for r in results if not r.handled]
    print(f"\n{len(results) - len(bad)}/{len(results)} rows handled ({time.time() - t0:.0f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
