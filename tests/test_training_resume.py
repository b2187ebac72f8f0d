"""kill -9 during training, then resume: at most one checkpoint interval is lost and no step is logged twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from regionedit.training.common import Run

SCRIPT = textwrap.dedent("""
    import sys, time, torch
    from regionedit.training.common import Run, train_loop
    out, max_steps, slow = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step_fn(step, gen):
        x = torch.randn(8, 4, generator=gen)
        loss = model(x).pow(2).mean()
        loss.backward()
        time.sleep(slow)
        return {"loss": float(loss)}

    train_loop(Run(out, ckpt_minutes=60, ckpt_steps=5), model, opt, step_fn, minutes=10, max_steps=max_steps,
               seed=0, log_every=1)
""")


def _steps(log) -> list[int]:
    return [json.loads(line)["step"] for line in log.read_text().splitlines() if line.strip()]


def test_kill_9_then_resume_loses_at_most_one_interval_and_logs_no_step_twice(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), "40", "0.05"])
    log = out / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and len(_steps(log)) >= 13):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _steps(log)
    assert len(before) >= 13 and before == list(range(1, len(before) + 1))
    saved = Run(out).load()["step"]
    assert saved % 5 == 0 and before[-1] - saved < 5  # the checkpoint is at most one interval (5 steps) behind
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out), "20", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resumed {out} at step {saved}" in done.stdout
    assert _steps(log) == list(range(1, 21))  # every step once, in order


@pytest.mark.parametrize("kw", [{"ckpt_minutes": 0}, {"ckpt_steps": 0}])
def test_checkpoint_interval_is_validated(tmp_path, kw):
    with pytest.raises(ValueError, match="checkpoint"):
        Run(tmp_path, **kw)


def test_run_load_reads_a_state_once_per_version_and_a_save_or_release_rereads(tmp_path, monkeypatch):
    """A trainer's setup asks Run.load several times (resume checks, its record, the loop's resume): one read of
    state.pt serves them; a new checkpoint (another version of the file) is read afresh."""
    import torch

    from regionedit.training import common

    reads = []
    real = common.load_checkpoint
    monkeypatch.setattr(common, "load_checkpoint", lambda p: reads.append(p) or real(p))
    run = Run(tmp_path / "run")
    run.save({"step": 1, "w": torch.zeros(2)})
    assert run.load()["step"] == 1 and run.load()["step"] == 1 and len(reads) == 1
    run.save({"step": 2, "w": torch.ones(2)})
    assert run.load()["step"] == 2 and len(reads) == 2
    other = Run(tmp_path / "run")  # another writer of the same folder: a changed file is read again
    other.save({"step": 3, "w": torch.ones(3)})
    assert run.load()["step"] == 3 and len(reads) == 3
    run.release()
    assert run.load()["step"] == 3 and len(reads) == 4
