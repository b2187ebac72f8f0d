"""`regionedit train region --data` in 2 processes on CPU (accelerate launch, gloo) and after a kill -9.

- the 2-process run: every rank reads its own share (the sample ids of the two ranks are disjoint and together
  are the whole dataset, epoch after epoch), the replicas stay identical (DDP averages the gradients: the ranks
  saw different samples, so without the averaging their weights would differ), rank 0 alone logs and writes the
  checkpoint, and a resumed run reads on in the same order;
- kill -9 in the middle of a one-process run on the new data layer: at most one checkpoint interval lost, no
  step logged twice, and the resumed run reads the samples the uninterrupted one would have.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from regionedit.data import open_dataset

N, BATCH = 12, 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from regionedit.world.export import export_dataset
    from regionedit.world.tiny import save_tiny_models

    root = tmp_path_factory.mktemp("mp")
    data = export_dataset(root / "mb", N, 3, "magicbrush", progress=False, chunk_size=5)
    return save_tiny_models(root / "tiny"), data


def _args(tiny, data, out, steps):
    return ["train", "region", "--model", str(tiny), "--out", str(out), "--data", str(data), "--batch", str(BATCH),
            "--gen-steps", "1", "--image-size", "32", "--log-every", "1", "--sample-log", "--checkpoint-steps", "1",
            "--eval-n", "2", "--no-progress", "--max-steps", str(steps)]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_PORT=str(29500 + os.getpid() % 1000))
    env.pop("WORLD_SIZE", None), env.pop("RANK", None), env.pop("LOCAL_RANK", None)
    return env


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """``subprocess.run`` that, on a timeout, first has every process of the run dump its threads' stacks (the
    trainer registers faulthandler on SIGUSR1) so the failure says where it hung, then kills them all."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        below = _descendants(proc.pid)
        for pid in [p for p in below if not _descendants(p)]:  # the workers (the launchers would die of SIGUSR1)
            try:
                os.kill(pid, signal.SIGUSR1)
            except OSError:
                pass
        time.sleep(3)
        for pid in [proc.pid, *below]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout} s; stacks of the hung processes:\n{err[-12000:]}\nstdout:\n{out[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_two_processes_split_the_data_sync_gradients_and_resume_in_order(setup, tmp_path):
    tiny, data = setup
    out = tmp_path / "run"
    accelerate = shutil.which("accelerate") or str(Path(sys.executable).parent / "accelerate")
    cmd = [accelerate, "launch", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "-m", "regionedit.cli.main"]
    first = _run(cmd + _args(tiny, data, out, 2), timeout=400)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "starting 2 with torchrun" in first.stderr  # accelerate's CPU launcher alone would have started one
    ds = open_dataset(data)
    everything = sorted(s.id for s in ds)
    ranks = [_jsonl(out / "region" / f"samples-rank{r}.jsonl") for r in range(2)]
    for recs in ranks:
        assert [r["step"] for r in recs] == [1, 2]
    ids = [[i for rec in recs for i in rec["ids"]] for recs in ranks]
    assert not set(ids[0]) & set(ids[1]) and sorted(ids[0] + ids[1]) == everything  # disjoint, all of epoch 0
    for r in range(2):  # each rank's order is its deterministic stream
        st = ds.stream(rank=r, world_size=2, seed=0, shuffle_buffer=500)
        assert ids[r] == [next(st).id for _ in range(2 * BATCH)]
    log = _jsonl(out / "region" / "log.jsonl")  # rank 0 alone writes it: each step once
    assert [r["step"] for r in log] == [1, 2] and all(r["processes"] == 2 and r["samples_seen"] == r["step"] * 6 for r in log)
    state = torch.load(out / "region" / "state.pt", map_location="cpu", weights_only=True)
    assert state["world_size"] == 2 and state["ranks_in_sync"] is True and len(state["generators"]) == 2
    assert [s["stream"] for s in json.loads(state["data_states"])] == [{"epoch": 0, "offset": 6}] * 2
    card = json.loads((out / "export" / "region_predictor" / "training_state.json").read_text())
    assert card["processes"] == 2 and card["samples_seen"] == 12 and card["steps"] == 2
    # resume to step 4: epoch 1, again disjoint and complete, in each rank's stream order
    second = _run(cmd + _args(tiny, data, out, 4), timeout=400)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resumed" in second.stdout + second.stderr
    ranks = [_jsonl(out / "region" / f"samples-rank{r}.jsonl") for r in range(2)]
    ids = [[i for rec in recs if rec["step"] > 2 for i in rec["ids"]] for recs in ranks]
    assert [[r["step"] for r in recs] for recs in ranks] == [[1, 2, 3, 4]] * 2
    assert not set(ids[0]) & set(ids[1]) and sorted(ids[0] + ids[1]) == everything
    for r in range(2):
        st = ds.stream(rank=r, world_size=2, seed=0, shuffle_buffer=500)
        assert ids[r] == [next(st).id for _ in range(4 * BATCH)][2 * BATCH:]
    assert [r["step"] for r in _jsonl(out / "region" / "log.jsonl")] == [1, 2, 3, 4]
    assert torch.load(out / "region" / "state.pt", map_location="cpu", weights_only=True)["ranks_in_sync"] is True


def test_kill_9_on_the_data_layer_loses_at_most_one_interval_and_reads_on_in_order(setup, tmp_path):
    tiny, data = setup
    out = tmp_path / "run"
    base = [sys.executable, "-m", "regionedit.cli.main"]
    args = _args(tiny, data, out, 200)
    args[args.index("--checkpoint-steps") + 1] = "3"
    args += ["--threads", "1"]
    proc = subprocess.Popen(base + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    log = out / "region" / "log.jsonl"
    deadline = time.time() + 200
    while time.time() < deadline and not (log.exists() and len(_jsonl(log)) >= 8):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [r["step"] for r in _jsonl(log)]
    assert len(before) >= 8 and before == list(range(1, len(before) + 1))
    saved = torch.load(out / "region" / "state.pt", map_location="cpu", weights_only=True)["step"]
    # at most one interval (3 steps) behind: the log line of step 9 may be written and the kill land before the
    # checkpoint of step 9 is (the resumed run truncates the log to the checkpoint and runs those steps again)
    assert saved % 3 == 0 and 0 <= before[-1] - saved <= 3
    end = saved + 4
    args[args.index("--max-steps") + 1] = str(end)
    done = _run(base + args, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resumed {out / 'region'} at step {saved}" in done.stdout
    assert [r["step"] for r in _jsonl(log)] == list(range(1, end + 1))  # every step once, in order
    samples = _jsonl(out / "region" / "samples-rank0.jsonl")
    assert [r["step"] for r in samples] == list(range(1, end + 1))
    st = open_dataset(data).stream(seed=0, shuffle_buffer=500)  # what one uninterrupted run reads
    assert [i for r in samples for i in r["ids"]] == [next(st).id for _ in range(end * BATCH)]


def test_mixed_precision_flag(setup, tmp_path):
    from regionedit.cli.main import main as cli

    tiny, data = setup
    with pytest.raises(SystemExit, match="fp16 needs a CUDA GPU"):
        cli(_args(tiny, data, tmp_path / "run", 1) + ["--mixed-precision", "fp16"])
    with pytest.raises(SystemExit):
        cli(_args(tiny, data, tmp_path / "run", 1) + ["--mixed-precision", "fp8"])  # not a choice
