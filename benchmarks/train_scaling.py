"""Samples/s of `regionedit train region` in 1 and 2 processes on this machine, side by side, and their ratio.

    python benchmarks/train_scaling.py                       # bundled shapes-64 models, world caption pairs
    python benchmarks/train_scaling.py --data DIR --batch 8 --steps 20 --settings 1 2 1:1 --repeat 3
    python benchmarks/train_scaling.py --ceiling             # the machine alone: matmul / conv, 1 vs 2 processes

Each setting is a fresh run of the real command (one process: `python -m regionedit.cli.main train region ...`;
N processes: `python -m torch.distributed.run --nproc_per_node N -m regionedit.cli.main train region ...`, gloo on
CPU, what `accelerate launch --num_processes N` runs here), with the same batch *per process* (so N processes
train on N times the samples per step), `--threads` = cores / N per process (or N:T settings), no evaluation and no checkpoints
during the measured steps. Samples/s is read from the run's metrics log (`<out>/region/log.jsonl`, one record
per step): samples of the steps after `--warmup`, over their wall time (data loading, forward, backward, the
gradient all-reduce and the optimizer step included; model loading and start-up excluded).

The machine is shared: the load average before and after each run is printed beside its figure (other jobs'
CPU use lowers every figure, and the 2-process one most, as it needs both cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def parse_setting(text: str, cores: int) -> tuple[int, int]:
    """``"N"`` (N processes, cores // N threads each) or ``"N:T"`` (T threads each) -> (N, T)."""
    n, _, t = text.partition(":")
    return int(n), int(t) if t else max(1, cores // int(n))


def measure(setting: str, args, data: Path, work: Path) -> dict:
    cores = args.cores or os.cpu_count() or 2
    n, threads = parse_setting(setting, cores)
    out = work / f"run-{n}-{threads}"
    shutil.rmtree(out, ignore_errors=True)
    train = ["train", "region", "--model", args.model, "--data", str(data), "--out", str(out), "--batch", str(args.batch),
             "--max-steps", str(args.steps), "--log-every", "1", "--eval-n", "0", "--no-progress",
             "--checkpoint-minutes", "600", "--threads", str(threads), "--seed", "0"]
    if args.image_size:
        train += ["--image-size", str(args.image_size)]
    if n == 1:
        cmd = [sys.executable, "-m", "regionedit.cli.main", *train]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--master_port",
               str(29600 + n), "-m", "regionedit.cli.main", *train]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    before = _loadavg()
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{n} process(es) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    recs = [json.loads(line) for line in (out / "region" / "log.jsonl").read_text().splitlines() if line.strip()]
    timed = [r for r in recs if r["step"] > args.warmup]
    samples = sum(args.batch * n for _ in timed)
    seconds = sum(args.batch * n / r["samples_per_s"] for r in timed)
    rates = sorted(r["samples_per_s"] for r in timed)
    return {"setting": setting, "processes": n, "threads_per_process": threads, "samples_per_s": samples / seconds,
            "median_step_samples_per_s": rates[len(rates) // 2], "steps_timed": len(timed), "samples_timed": samples,
            "seconds_timed": seconds, "load_before": before, "load_after": _loadavg(), "wall_s": wall}


_CEILING_SNIPPET = """
import time, torch
torch.set_num_threads({threads})
a, b = torch.randn(384, 384), torch.randn(384, 384)
x, conv = torch.randn(8, 64, 32, 32), torch.nn.Conv2d(64, 64, 3, padding=1)
def rate(f, secs={secs}):
    for _ in range(3):
        f()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < secs:
        f()
        n += 1
    return n / (time.perf_counter() - t0)
print(rate(lambda: a @ b), rate(lambda: conv(x).sum().backward()))
"""


def ceiling(secs: float = 6.0) -> None:
    """The machine's own scaling, without our code: a 384x384 matmul and a conv forward+backward (it/s) in one
    1-thread process, two 1-thread processes at once (their sum), and one 2-thread process."""
    def run(n: int, threads: int) -> list[float]:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        code = _CEILING_SNIPPET.format(threads=threads, secs=secs)
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
                 for _ in range(n)]
        outs = [[float(v) for v in pr.communicate()[0].split()] for pr in procs]
        return [sum(o[i] for o in outs) for i in range(2)]

    one, two, wide = run(1, 1), run(2, 1), run(1, 2)
    print("| compute ceiling (it/s) | 1 x 1 | 2 x 1 (sum) | vs 1 x 1 | 1 x 2 | vs 1 x 1 |")
    print("|---|---|---|---|---|---|")
    for i, name in enumerate(("matmul 384x384", "conv 64ch 32x32 fwd+bwd")):
        print(f"| {name} | {one[i]:.1f} | {two[i]:.1f} | {two[i] / one[i]:.2f}x | {wide[i]:.1f} | {wide[i] / one[i]:.2f}x |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="shapes-64", help="frozen models (default: the bundled shapes-64)")
    p.add_argument("--data", type=Path, default=None,
                   help="dataset for --data (default: 256 shapes-world caption pairs exported to a temporary folder)")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--batch", type=int, default=8, help="samples per step per process")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--warmup", type=int, default=3, help="first steps left out of the figure")
    p.add_argument("--settings", nargs="+", default=["1", "2", "1:1"],
                   help="N (processes, cores / N threads each) or N:T (T threads each); the first is the baseline. "
                        "Default 1 2 1:1: one process on every core, two processes, and one process on one core (the "
                        "per-core baseline)")
    p.add_argument("--cores", type=int, default=None, help="cores shared by the processes (default: os.cpu_count())")
    p.add_argument("--repeat", type=int, default=1, help="measure each setting this many times (alternating)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--ceiling", action="store_true",
                   help="only measure the machine's own 1 vs 2 process scaling on plain matmul / conv (no training)")
    args = p.parse_args(argv)
    if args.ceiling:
        ceiling()
        return 0
    if args.warmup >= args.steps:
        raise SystemExit("--warmup must be below --steps")
    with tempfile.TemporaryDirectory(prefix="train_scaling_") as tmp:
        work = Path(tmp)
        data = args.data
        if data is None:
            from regionedit.world.export import export_dataset

            data = export_dataset(work / "pairs", 256, 0, "pairs", progress=False, chunk_size=32)
        rows = []
        for _ in range(args.repeat):
            for setting in args.settings:
                r = measure(setting, args, data, work)
                rows.append(r)
                print(f"{r['processes']} process(es) x {r['threads_per_process']} thread(s): {r['samples_per_s']:.2f} "
                      f"samples/s (median step {r['median_step_samples_per_s']:.2f}; {r['steps_timed']} steps, "
                      f"{r['samples_timed']} samples in {r['seconds_timed']:.1f} s; load average {r['load_before']:.2f} -> "
                      f"{r['load_after']:.2f})", flush=True)
    best = {s: max(r["samples_per_s"] for r in rows if r["setting"] == s) for s in args.settings}
    median = {s: max(r["median_step_samples_per_s"] for r in rows if r["setting"] == s) for s in args.settings}
    base = args.settings[0]
    print()
    print(f"model {args.model}, batch {args.batch} per process, {args.steps} steps ({args.warmup} warm-up), "
          f"{os.cpu_count()} CPUs, {args.repeat} run(s) per setting")
    print(f"| processes x threads | samples/s (best run) | vs {base} | median step samples/s (best run) | vs {base} |")
    print("|---|---|---|---|---|")
    cores = args.cores or os.cpu_count() or 2
    for s in args.settings:
        n, t = parse_setting(s, cores)
        print(f"| {n} x {t} | {best[s]:.2f} | {best[s] / best[base]:.2f}x | {median[s]:.2f} | {median[s] / median[base]:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "best": best}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
