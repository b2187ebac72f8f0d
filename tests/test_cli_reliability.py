"""`regionedit edit` under careless or hostile use (issue 33): outputs never collide, a batch runs past bad
jobs and resumes, stale temp files are cleaned, numeric flags are validated, non-finite model output is an
error, --max-pixels exists and is named, an input's alpha channel is kept."""

import json
import os
import shutil
import stat

import numpy as np
import pytest
from PIL import Image

from regionedit.cli.main import main as cli
from regionedit.io import read_png_metadata
from regionedit.world import sample_edit
from regionedit.world.tiny import save_tiny_models


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("tiny"), region_bias=3.0)  # region: ~the whole image


def _sample(tmp_path, i=2):
    s = sample_edit(0, i)
    p = tmp_path / f"in{i}.png"
    Image.fromarray(s.source).save(p)
    return p, s


def _run(capsys, tiny_dir, *args):
    rc = cli(["edit", *map(str, args), "--model", str(tiny_dir), "--steps", "1", "--priors", "off", "--json"])
    return rc, [json.loads(x) for x in capsys.readouterr().out.strip().splitlines() if x.startswith("{")]


# 1. outputs never collide ---------------------------------------------------------------------------------
def test_output_and_mask_out_same_file_refused(tiny_dir, tmp_path, capsys):
    src, s = _sample(tmp_path)
    out = tmp_path / "o.png"
    with pytest.raises(SystemExit) as e:
        _run(capsys, tiny_dir, src, s.instruction, "-o", out, "--mask-out", out, "--overwrite")
    assert "--output" in str(e.value) and "--mask-out" in str(e.value)
    assert not out.exists()


def test_batch_outputs_never_collide(tiny_dir, tmp_path, capsys):
    (a, sa), (b, sb) = _sample(tmp_path, 0), _sample(tmp_path, 1)
    before = a.read_bytes()
    jobs = [{"image": str(a), "instruction": sa.instruction, "output": str(tmp_path / "o.png")},
            {"image": str(b), "instruction": sb.instruction, "output": str(tmp_path / "o.png")},  # same output
            {"image": str(b), "instruction": sb.instruction, "output": str(a)},  # another job's input
            {"image": str(b), "instruction": sb.instruction, "output": str(tmp_path / "p.png"),
             "mask_out": str(tmp_path / "p.png")},  # its own mask
            {"image": str(b), "instruction": sb.instruction, "output": str(tmp_path / "q.png")}]
    jl = tmp_path / "jobs.jsonl"
    jl.write_text("\n".join(map(json.dumps, jobs)) + "\n")
    rc, recs = _run(capsys, tiny_dir, "--batch", jl, "--overwrite")
    assert rc == 1 and [r["status"] for r in recs] == ["edited", "error", "error", "error", "edited"]
    assert "line 1" in recs[1]["reason"] and "line 1" in recs[2]["reason"] and "mask_out" in recs[3]["reason"]
    assert [r["line"] for r in recs] == [1, 2, 3, 4, 5]
    assert a.read_bytes() == before and not (tmp_path / "p.png").exists()
    assert read_png_metadata(tmp_path / "o.png")["regionedit:instruction"] == sa.instruction.strip()


# 2. batch: bad lines are reported, the rest runs; --resume; stale temp files ------------------------------
def test_batch_continues_past_bad_jobs(tiny_dir, tmp_path, capsys, monkeypatch):
    src, s = _sample(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:  # root writes anywhere: refuse writes into ro/ as the OS would for a user
        import regionedit.io.saving as saving

        real_open = os.open

        def guarded(path, *a, **k):
            if str(path).startswith(str(ro)):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *a, **k)

        monkeypatch.setattr(saving.os, "open", guarded)
    job = {"image": str(src), "instruction": s.instruction}
    lines = [json.dumps(job | {"output": str(tmp_path / "a.png")}),
             '{"image": "x.png", "instruction": "remove the star", ',  # malformed
             "[1, 2, 3]",  # not an object
             json.dumps(job | {"output": str(tmp_path / "n.png"), "seed": None}),
             json.dumps(job | {"output": str(ro / "r.png")}),  # read-only folder
             json.dumps(job | {"output": str(tmp_path / "b.png"), "seed": 5})]
    jl = tmp_path / "jobs.jsonl"
    jl.write_text("\n".join(lines) + "\n")
    try:
        rc, recs = _run(capsys, tiny_dir, "--batch", jl)
    finally:
        ro.chmod(stat.S_IRWXU)
    assert rc == 1 and [r["status"] for r in recs] == ["edited", "error", "error", "error", "error", "edited"]
    assert [r["line"] for r in recs] == [1, 2, 3, 4, 5, 6]
    assert "not valid JSON" in recs[1]["reason"] and "one JSON object per line" in recs[1]["reason"]
    assert "JSON object" in recs[2]["reason"]
    assert "'seed'" in recs[3]["reason"] and "2**63" in recs[3]["reason"]
    assert "permission" in recs[4]["reason"] and "writable" in recs[4]["reason"]
    assert (tmp_path / "a.png").exists() and (tmp_path / "b.png").exists() and not (ro / "r.png").exists()


def test_batch_resume_skips_finished_and_cleans_stale_temp(tiny_dir, tmp_path, capsys):
    jobs = []
    for i in range(3):
        src, s = _sample(tmp_path, i)
        jobs.append({"image": str(src), "instruction": s.instruction, "output": str(tmp_path / f"o{i}.png"),
                     "mask_out": str(tmp_path / f"m{i}.png"), "seed": i})
    jl = tmp_path / "jobs.jsonl"
    jl.write_text("\n".join(map(json.dumps, jobs[:2])) + "\n")
    rc, recs = _run(capsys, tiny_dir, "--batch", jl)
    assert rc == 0 and [r["status"] for r in recs] == ["edited", "edited"]
    first = (tmp_path / "o0.png").read_bytes()
    # a kill -9 mid-write leaves save_png's temp file; someone else's .tmp stays
    stale = tmp_path / ".o2.png.0123456789ab.tmp"
    stale.write_bytes(b"partial")
    other = tmp_path / ".notes.txt.tmp"
    other.write_bytes(b"mine")
    jl.write_text("\n".join(map(json.dumps, jobs)) + "\n")
    rc, recs = _run(capsys, tiny_dir, "--batch", jl, "--resume")
    assert rc == 0 and [r["status"] for r in recs] == ["skipped", "skipped", "edited"]
    assert (tmp_path / "o0.png").read_bytes() == first and (tmp_path / "o2.png").exists()
    assert not stale.exists() and other.exists()
    # an existing output that is not this job's (another seed) is not "finished": refused without --overwrite
    jl.write_text(json.dumps(jobs[0] | {"seed": 7}) + "\n")
    rc, recs = _run(capsys, tiny_dir, "--batch", jl, "--resume")
    assert rc == 1 and recs[0]["status"] == "error" and "already exists" in recs[0]["reason"]
    # without --resume a finished job is an error (as before), and the message names --resume
    jl.write_text(json.dumps(jobs[0]) + "\n")
    rc, recs = _run(capsys, tiny_dir, "--batch", jl)
    assert rc == 1 and "--resume" in recs[0]["reason"]


def test_resume_finishes_a_job_whose_mask_was_written(tiny_dir, tmp_path, capsys):
    # killed between the mask and the image: the mask carries the job's provenance, so --resume redoes the job
    src, s = _sample(tmp_path)
    out, mout = tmp_path / "o.png", tmp_path / "m.png"
    args = [src, s.instruction, "-o", out, "--mask-out", mout]
    assert _run(capsys, tiny_dir, *args)[0] == 0
    out.unlink()
    rc, recs = _run(capsys, tiny_dir, *args, "--resume")
    assert rc == 0 and recs[0]["status"] == "edited" and out.exists()


# 3. validated numbers; non-finite model output -------------------------------------------------------------
@pytest.mark.parametrize("flag,value,expect", [
    ("--steps", "-3", ">= 1"), ("--steps", "0", ">= 1"), ("--guidance", "nan", ">= 0"),
    ("--guidance", "inf", ">= 0"), ("--guidance", "-1", ">= 0"), ("--seed", str(2**64), "2**63"),
    ("--seed", "-1", "2**63"), ("--max-pixels", "0", ">= 1")])
def test_numeric_flags_validated(tiny_dir, tmp_path, capsys, flag, value, expect):
    with pytest.raises(SystemExit) as e:
        cli(["edit", str(tmp_path / "missing.png"), "remove the star", "-o", str(tmp_path / "o.png"),
             "--model", str(tiny_dir), flag, value])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {flag}" in err and expect in err, err


def test_nan_weights_are_an_error_not_an_edit(tiny_dir, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "nan_model"
    shutil.copytree(tiny_dir, bad)
    for sub in ("unet", "unet_inpaint"):
        f = bad / sub / "diffusion_pytorch_model.safetensors"
        save_file({k: v.clone().fill_(float("nan")) if v.is_floating_point() else v for k, v in load_file(f).items()}, f)
    src, s = _sample(tmp_path)
    out = tmp_path / "o.png"
    rc = cli(["edit", str(src), s.instruction, "-o", str(out), "--model", str(bad), "--steps", "1", "--priors", "off",
              "--candidates", "1", "--json"])
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 1 and rec["status"] == "error" and "non-finite" in rec["reason"] and "weights" in rec["reason"]
    assert not out.exists()


# 4. --max-pixels --------------------------------------------------------------------------------------------
def test_max_pixels_flag_and_message(tiny_dir, tmp_path, capsys):
    src, s = _sample(tmp_path)  # 64 x 64 = 4096 pixels
    rc, recs = _run(capsys, tiny_dir, src, s.instruction, "-o", tmp_path / "o.png", "--max-pixels", "4000")
    assert rc == 1 and "--max-pixels 4096" in recs[0]["reason"]
    rc, recs = _run(capsys, tiny_dir, src, s.instruction, "-o", tmp_path / "o.png", "--max-pixels", "4096")
    assert rc == 0 and recs[0]["status"] == "edited"


# 5. alpha kept ----------------------------------------------------------------------------------------------
def test_rgba_input_keeps_alpha(tiny_dir, tmp_path, capsys):
    s = sample_edit(0, 2)
    alpha = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (64, 1))
    rgba = np.dstack([s.source, alpha])
    src = tmp_path / "in.png"
    Image.fromarray(rgba, "RGBA").save(src)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    out = tmp_path / "o.png"
    rc, recs = _run(capsys, tiny_dir, src, "remove the red circle", "-o", out, "--mask", tmp_path / "m.png",
                    "--method", "mask")
    assert rc == 0 and recs[0]["status"] == "edited" and "alpha" in recs[0]
    with Image.open(out) as im:
        assert im.mode == "RGBA"
        res = np.asarray(im)
    inside = mask > 0
    assert np.array_equal(res[..., 3], alpha)  # the original alpha, everywhere
    assert np.array_equal(res[~inside], rgba[~inside])  # outside the edit: the input's RGBA, bit for bit
    assert (res[inside][:, :3] != rgba[inside][:, :3]).any()
