"""Multi-process training through ``accelerate`` (gloo on CPU, NCCL where GPUs exist), and the one-process case.

:class:`Dist` is what the training loop asks of the processes: who is rank 0 (the only one that logs, shows
progress and writes checkpoints), a max over ranks (so every rank takes the same stop / checkpoint decision on
the same step: collective calls must match), a gather of small JSON-able objects (each rank's data position and
loss sums, as uint8 tensors: nothing is pickled), and ``prepare`` (``accelerator.prepare``: the model wrapped in
``DistributedDataParallel``, whose backward averages the gradients over ranks).

Launch (see docs/training.md)::

    accelerate launch --num_processes 2 -m regionedit.cli.main train region ...   # CPU: relaunched under torchrun
    accelerate launch --multi_gpu --num_processes 2 -m regionedit.cli.main train region ...
    torchrun --nproc_per_node 2 -m regionedit.cli.main train region ...

On a machine without GPUs, accelerate 1.x's ``launch`` starts a single process unless ``--multi_gpu`` (its torchrun
launcher, which works on CPU) or an MPI hostfile is given; :func:`relaunch_under_torchrun` detects that case and
starts the requested number of processes with ``torch.distributed.run`` instead of silently training in one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

MIXED_PRECISION = ("no", "fp16", "bf16")


def launched_world_size() -> int:
    """``WORLD_SIZE`` as torchrun / accelerate set it (1 when not launched as several processes)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


class Dist:
    """The processes of a run. One process, no accelerate: every method is local. Several (or mixed precision):
    an ``accelerate.Accelerator`` (``cpu=True`` without CUDA, so gloo; DDP with ``find_unused_parameters``, as
    a step may leave the presence head unused)."""

    def __init__(self, accelerator=None):
        self.acc = accelerator
        if accelerator is None:
            self.rank, self.world_size, self.local_world_size = 0, 1, 1
        else:
            self.rank, self.world_size = accelerator.process_index, accelerator.num_processes
            self.local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", self.world_size))
        self.is_main = self.rank == 0
        self.device = accelerator.device if accelerator is not None else torch.device("cpu")
        self.mixed_precision = accelerator.mixed_precision if accelerator is not None else "no"

    @classmethod
    def create(cls, mixed_precision: str | None = None) -> "Dist":
        """The run's processes: accelerate when launched as several processes or asked for mixed precision.

        ``mixed_precision``: ``no`` / ``fp16`` / ``bf16``, or None for accelerate's ``--mixed_precision`` (the
        ``ACCELERATE_MIXED_PRECISION`` variable), else ``no``. fp16 needs CUDA (a ``SystemExit`` on CPU); bf16 runs on
        CPU but is far slower there than fp32 on the CPUs we measured (DEVELOPERS.md), so fp32 is the default."""
        mp = mixed_precision or os.environ.get("ACCELERATE_MIXED_PRECISION", "no") or "no"
        mp = mp.lower()
        if mp not in MIXED_PRECISION:
            raise SystemExit(f"--mixed-precision {mp!r}: choose one of {', '.join(MIXED_PRECISION)}")
        cuda = torch.cuda.is_available()
        if mp == "fp16" and not cuda:
            raise SystemExit("--mixed-precision fp16 needs a CUDA GPU (fp16 autocast is not supported on CPU here); "
                             "on CPU train in fp32 (--mixed-precision no, the default) or bf16")
        if launched_world_size() == 1 and mp == "no":
            return cls(None)
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        acc = Accelerator(cpu=not cuda, mixed_precision=mp,
                          kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        return cls(acc)

    # -- the model ---------------------------------------------------------------------------------
    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        """``(model to call, optimizer)``: DDP-wrapped (and autocast for mixed precision) under accelerate."""
        if self.acc is None:
            return model, optimizer
        return self.acc.prepare(model, optimizer)

    def backward(self, loss: torch.Tensor) -> None:
        if self.acc is None:
            loss.backward()
        else:
            self.acc.backward(loss)

    # -- collectives (every rank must call them, in the same order) ---------------------------------
    def all_max(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return t.tolist()

    def gather_json(self, obj) -> list:
        """Every rank's ``obj`` (JSON-able), in rank order, on every rank: sent as UTF-8 bytes in uint8 tensors."""
        if self.world_size == 1:
            return [obj]
        data = torch.tensor(list(json.dumps(obj).encode("utf-8")), dtype=torch.uint8)
        sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(self.world_size)]
        torch.distributed.all_gather(sizes, torch.tensor([data.numel()], dtype=torch.int64))
        n = int(max(s.item() for s in sizes))
        padded = torch.zeros(n, dtype=torch.uint8)
        padded[:data.numel()] = data
        bufs = [torch.zeros(n, dtype=torch.uint8) for _ in range(self.world_size)]
        torch.distributed.all_gather(bufs, padded)
        return [json.loads(bytes(b[:int(s.item())].tolist()).decode("utf-8")) for b, s in zip(bufs, sizes)]

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def end(self) -> None:
        """Leave the process group (all ranks), so the launcher sees every process finish cleanly."""
        if self.acc is not None and self.world_size > 1:
            self.barrier()
            self.acc.end_training()


def exit_worker() -> None:
    """End a worker of a multi-process run once everything is written and the process group is left.

    Tearing down the run's DDP model and gloo process group when ``run`` returns can deadlock (reproduced here
    under CPU load: rank 1 exited, rank 0 hung in a C++ destructor at the return, beside a gloo thread; cf.
    pytorch/pytorch#75097, #179291), so a worker leaves with ``os._exit(0)`` after flushing its streams: every
    checkpoint, export and log line is already written atomically and closed."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def params_checksum(model: torch.nn.Module) -> float:
    """A float64 sum over every parameter: equal on every rank when DDP kept the replicas in sync."""
    with torch.no_grad():
        return float(sum(p.detach().double().sum() for p in model.parameters()))


# ----------------------------------------------------------------------------------------------
# accelerate's single-process launch on CPU


def _parent_num_processes() -> int | None:
    """``--num_processes N`` from the command line of the process that started this one (accelerate's launcher),
    or None. Linux only (``/proc``)."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None
    if not any("accelerate" in a for a in argv[:3]):
        return None
    for i, a in enumerate(argv):
        for flag in ("--num_processes", "--num-processes"):
            if a == flag and i + 1 < len(argv):
                return int(argv[i + 1]) if argv[i + 1].isdigit() else None
            if a.startswith(flag + "="):
                v = a.split("=", 1)[1]
                return int(v) if v.isdigit() else None
    return None


def relaunch_under_torchrun(argv: list[str] | None = None) -> int | None:
    """When ``accelerate launch --num_processes N`` (N > 1) started this process alone (its simple launcher: no
    ``LOCAL_RANK``, but the ``MASTER_ADDR`` it sets only for N > 1), run ``python -m torch.distributed.run
    --nproc_per_node N -m regionedit.cli.main <argv>`` and return its exit code; else None (carry on here).
    ``argv``: the command line after the program (default ``sys.argv[1:]``)."""
    if "LOCAL_RANK" in os.environ or "ACCELERATE_MIXED_PRECISION" not in os.environ or "MASTER_ADDR" not in os.environ:
        return None
    n = _parent_num_processes()
    if n is None:
        raise SystemExit("accelerate launch started one process although several were asked for (on a machine without "
                         "GPUs its default launcher starts one). Launch with `accelerate launch --multi_gpu "
                         "--num_processes N ...` (accelerate's torchrun launcher; it runs on CPU with gloo) or "
                         "`torchrun --nproc_per_node N -m regionedit.cli.main ...`")
    if n <= 1:
        return None
    argv = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    port = env.get("MASTER_PORT", "29500")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--master_addr",
           env.get("MASTER_ADDR", "127.0.0.1"), "--master_port", port, "-m", "regionedit.cli.main", *argv]
    print(f"accelerate launch started one process on a machine without GPUs: starting {n} with torchrun (gloo)",
          file=sys.stderr, flush=True)
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.call(cmd, env=env)
