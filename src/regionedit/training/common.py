"""Shared training loop pieces: resumable run state, time budget, EMA, JSONL logs."""

from __future__ import annotations

import copy
import json
import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch


def atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class CheckpointError(SystemExit):
    """A checkpoint that cannot be loaded safely (or at all). A ``SystemExit``: the command line prints the
    message and exits 1, with no traceback."""


def load_checkpoint(path: Path) -> dict:
    """Load a training checkpoint with ``torch.load(..., weights_only=True)``: tensors, dicts, lists, tuples,
    numbers, strings and None only, never arbitrary pickled objects, so a planted file cannot run code. A file
    that holds anything else (or is not a checkpoint) is a :class:`CheckpointError` naming it; there is no
    fallback to an unrestricted load."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: refused to load this checkpoint: it holds Python objects other than tensors, numbers, strings, "
            f"lists and dicts, which could run code when loaded ({first}). It was not written by this version's "
            "trainers or was tampered with: delete it (or start a fresh --out) and train again.") from None
    except FileNotFoundError:
        raise
    except Exception as e:  # truncated, empty, not a torch file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e}); "
                              "delete it (or start a fresh --out) and train again.") from None


class EMA:
    """Exponential moving average of a model's parameters (as Stable Diffusion training keeps)."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # warm-up of the decay
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - d)


def add_checkpoint_arguments(p) -> None:
    """``--checkpoint-minutes`` / ``--checkpoint-steps`` on a trainer's argument parser (a kill -9 loses at most
    one interval: whichever of the two comes first)."""
    p.add_argument("--checkpoint-minutes", type=float, default=3.0,
                   help="checkpoint at least this often, in wall-clock minutes (default 3; > 0)")
    p.add_argument("--checkpoint-steps", type=int, default=None,
                   help="also checkpoint every this many steps (default: by time only; >= 1)")


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop the records of a JSONL log whose ``step`` is after ``step`` (a killed run's, redone after resume), in
    place and atomically; nothing when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    tmp.replace(path)


class Run:
    """A resumable training run in ``out_dir``: ``state.pt`` (model, EMA, optimizer, step, seconds,
    generator state) and ``log.jsonl``. Checkpoints every ``ckpt_minutes`` (and every ``ckpt_steps`` steps when
    given), and at the end."""

    def __init__(self, out_dir: Path, ckpt_minutes: float = 3.0, ckpt_steps: int | None = None):
        if not ckpt_minutes > 0:
            raise ValueError(f"--checkpoint-minutes must be > 0, got {ckpt_minutes}")
        if ckpt_steps is not None and ckpt_steps < 1:
            raise ValueError(f"--checkpoint-steps must be >= 1, got {ckpt_steps}")
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / "state.pt"
        self.log_path = self.dir / "log.jsonl"
        self.ckpt_seconds = ckpt_minutes * 60
        self.ckpt_steps = ckpt_steps
        self._loaded: tuple[tuple[int, int], dict] | None = None  # (file version, state) of the last load()

    @classmethod
    def for_args(cls, out_dir: Path, args) -> "Run":
        """A run with the checkpoint interval of a trainer's parsed arguments (:func:`add_checkpoint_arguments`)."""
        return cls(out_dir, getattr(args, "checkpoint_minutes", 3.0), getattr(args, "checkpoint_steps", None))

    def truncate_log(self, step: int) -> None:
        """Drop log records of steps after ``step`` (written after the last checkpoint by a run that was killed:
        the resumed run logs those steps again)."""
        truncate_jsonl(self.log_path, step)

    def exists(self) -> bool:
        return self.state_path.exists()

    def load(self) -> dict:
        """The run state, loaded safely (:func:`load_checkpoint`: tensors and plain data only). Read once per
        version of ``state.pt``: a trainer's setup (resume checks, its record, the loop's resume) shares one read
        until :meth:`release` or the next :meth:`save`. Treat the result as read-only."""
        st = self.state_path.stat()
        version = (st.st_mtime_ns, st.st_size)
        if self._loaded is None or self._loaded[0] != version:
            self._loaded = (version, load_checkpoint(self.state_path))
        return self._loaded[1]

    def release(self) -> None:
        """Forget the state :meth:`load` keeps (its tensors are a model's worth of memory)."""
        self._loaded = None

    def save(self, state: dict) -> None:
        self._loaded = None
        atomic_torch_save(state, self.state_path)
        self.plot()

    def plot(self) -> Path | None:
        """Write ``loss.png`` (the log's loss curves) beside ``log.jsonl``; None when there is nothing to draw yet."""
        from .curves import plot_losses

        return plot_losses(self.log_path) if self.log_path.exists() else None

    def log(self, record: dict) -> None:
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")


def earlier_record(run: Run, folder: Path, drop: tuple[str, ...] = ()) -> dict | None:
    """The training record of the weights a run continues from, for its model card: from the run state
    when resuming (``earlier_training``), else ``folder/training_state.json`` when ``folder`` holds
    weights to start from (minus the keys in ``drop``); None for a run from scratch."""
    if run.exists():
        return run.load().get("earlier_training")
    state_p = Path(folder) / "training_state.json"
    if not ((Path(folder) / "config.json").exists() and state_p.exists()):
        return None
    record = json.loads(state_p.read_text())
    for key in drop:
        record.pop(key, None)
    return record


def _generator_seed(seed: int, rank: int) -> int:
    """Rank 0 draws from ``seed`` (a one-process run's stream); rank r from its own seed."""
    return seed if rank == 0 else seed + 7919 * rank


def train_loop(
    run: Run,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step_fn: Callable[[int, torch.Generator], dict],
    minutes: float,
    max_steps: int | None,
    seed: int,
    ema: EMA | None = None,
    extra_state: Callable[[], dict] | None = None,
    lr_at: Callable[[int], float] | None = None,
    log_every: int = 20,
    *,
    dist=None,
    data_state: tuple[Callable[[], dict], Callable[[dict], None]] | None = None,
    samples_per_step: int | None = None,
    progress: bool = False,
    on_log: Callable[[dict], None] | None = None,
) -> dict:
    """Run ``step_fn(step, generator)`` (which does forward+backward and returns loss scalars) until
    ``minutes`` of wall time or ``max_steps``; resume from ``run`` if it holds a state.

    Several processes (``dist``, a :class:`regionedit.training.distributed.Dist`): ``model`` is the *unwrapped*
    module (its state is what is saved; ``step_fn`` calls the DDP wrapper); every rank takes the same stop and
    checkpoint decision each step (a max over ranks), rank 0 alone logs and writes the checkpoint, which holds every
    rank's generator state and data position. ``data_state``: ``(get, set)`` of this rank's data position
    (JSON-able), saved and restored so a resumed run reads the samples the uninterrupted run would have.
    ``samples_per_step``: samples per step per rank (for samples/s in the log and the progress bar).
    ``progress``: a tqdm bar on rank 0 (steps, samples/s, ETA). ``on_log``: called with each log record on rank 0."""
    from regionedit.training.distributed import Dist, params_checksum

    dist = dist if dist is not None else Dist(None)
    rank, world = dist.rank, dist.world_size
    step, seconds = 0, 0.0
    gen = torch.Generator().manual_seed(_generator_seed(seed, rank))
    if run.exists():
        st = run.load()
        model.load_state_dict(st["model"])
        optimizer.load_state_dict(st["optimizer"])
        if ema is not None and st.get("ema") is not None:
            ema.model.load_state_dict(st["ema"])
        step, seconds = st["step"], st["seconds"]
        saved_world = int(st.get("world_size", 1))
        gens = st.get("generators")
        if saved_world == world and gens is not None and len(gens) == world:
            gen.set_state(gens[rank].clone())  # a row of the stacked states: set_state needs its own storage
        elif rank == 0:
            gen.set_state(st["generator"])
        if data_state is not None and st.get("data_states"):
            states = json.loads(st["data_states"])
            if len(states) == world:
                data_state[1](states[rank])
            elif dist.is_main:
                print(f"resuming a {len(states)}-process run with {world} processes: the data order starts afresh "
                      "(the weights and optimizer resume)", flush=True)
        run.release()
        if dist.is_main:
            run.truncate_log(step)  # a kill -9 after the checkpoint left later steps in the log: they run again
            print(f"resumed {run.dir} at step {step} ({seconds / 60:.1f} min)", flush=True)

    def checkpoint():
        gens = torch.stack(dist_gather_tensor(gen.get_state()))
        datas = dist.gather_json(data_state[0]()) if data_state is not None else None
        sums = dist.gather_json(params_checksum(model)) if world > 1 else None
        if not dist.is_main:
            return
        st = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "ema": ema.model.state_dict() if ema is not None else None,
            "step": step,
            "seconds": seconds,
            "generator": gens[0].clone(),
            "generators": gens,
            "world_size": world,
        }
        if datas is not None:
            st["data_states"] = json.dumps(datas)
        if sums is not None:  # DDP keeps the replicas identical: a difference is a bug, say so in the state
            st["ranks_in_sync"] = max(sums) - min(sums) <= 1e-9 * max(1.0, abs(sums[0]))
            if not st["ranks_in_sync"]:
                print(f"warning: the ranks' parameters differ at step {step} (checksums {sums})", flush=True)
        if extra_state is not None:
            st.update(extra_state())
        run.save(st)

    def dist_gather_tensor(t: torch.Tensor) -> list[torch.Tensor]:
        if world == 1:
            return [t]
        return [torch.tensor(x, dtype=t.dtype) for x in dist.gather_json(t.tolist())]

    start = time.time()
    last_ckpt = start
    budget = minutes * 60
    acc: dict[str, float] = {}
    model.train()
    # SIGTERM / SIGINT end the run cleanly: finish the step, checkpoint, and let the caller export
    stop = {"flag": False}

    def _request_stop(signum, frame):
        stop["flag"] = True
        print(f"signal {signum}: stopping after this step", flush=True)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _request_stop)
    bar = None
    if progress and dist.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, initial=min(step, max_steps) if max_steps else step, unit="step",
                   dynamic_ncols=True, mininterval=1.0 if sys.stderr.isatty() else 30.0)
    global_batch = samples_per_step * world if samples_per_step else None
    window_t, window_steps = time.time(), 0
    started = step
    due = False
    while True:
        # one decision for every rank (collective calls must match): stop, out of time, done, checkpoint due
        flags = [float(stop["flag"]), float((time.time() - start) >= budget),
                 float(max_steps is not None and step >= max_steps), float(due)]
        stop_now, out_of_time, done, due = dist.all_max(flags) if world > 1 else flags
        if stop_now or out_of_time or done:
            stop["flag"] = bool(stop_now)
            break  # the final checkpoint follows
        if due:
            checkpoint()
            last_ckpt = time.time()
        if lr_at is not None:
            for g in optimizer.param_groups:  # a group may carry its own multiplier ("lr_scale")
                g["lr"] = lr_at(step) * g.get("lr_scale", 1.0)
        t0 = time.time()
        losses = step_fn(step, gen)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(model, step)
        step += 1
        window_steps += 1
        seconds += time.time() - t0
        for k, v in losses.items():
            acc[k] = acc.get(k, 0.0) + float(v)
        if bar is not None:
            bar.update(1)
            if global_batch:
                el = time.time() - window_t
                bar.set_postfix_str(f"{global_batch * window_steps / max(el, 1e-9):.1f} samples/s", refresh=False)
        if step % log_every == 0:
            sums = dist.gather_json(acc) if world > 1 else [acc]
            elapsed = time.time() - window_t
            if dist.is_main:
                keys = list(dict.fromkeys(k for d in sums for k in d))
                mean = {k: sum(d.get(k, 0.0) for d in sums) / (log_every * sum(k in d for d in sums)) for k in keys}
                rec = {"step": step, "minutes": round(seconds / 60, 2), **mean}
                if global_batch:
                    rec["samples_per_s"] = round(global_batch * window_steps / max(elapsed, 1e-9), 3)
                    rec["samples_seen"] = global_batch * step
                if world > 1:
                    rec["processes"] = world
                run.log(rec)
                if on_log is not None:
                    on_log(rec)
                if bar is None:
                    print(json.dumps(rec), flush=True)
                else:
                    bar.write(json.dumps(rec))
            window_t, window_steps = time.time(), 0
            acc = {}
        due = time.time() - last_ckpt > run.ckpt_seconds or bool(run.ckpt_steps and step % run.ckpt_steps == 0)
    checkpoint()
    if bar is not None:
        bar.close()
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    return {"step": step, "seconds": seconds, "interrupted": stop["flag"], "steps_this_run": step - started,
            "world_size": world}


# -- where trained models go: never into the installed package's bundled weights by accident ----------
def add_export_arguments(p, what: str) -> None:
    """``--export`` (default ``<out>/export``) and ``--overwrite-bundled`` on a trainer's parser; ``what`` says what
    the folder receives and where training starts from (the help text)."""
    p.add_argument("--export", type=Path, default=None,
                   help=f"{what} (default: <out>/export). A folder inside the package's bundled weights is refused "
                        "unless --overwrite-bundled")
    p.add_argument("--overwrite-bundled", action="store_true",
                   help="allow --export inside the installed package's bundled weights folder (replaces the shipped "
                        "models; for maintainers updating them)")


def inside_bundled(path: Path) -> bool:
    """Whether ``path`` is (or lies inside) the installed package's bundled weights folder."""
    root = _bundled_dir().resolve().parent  # .../regionedit/weights
    p = Path(path).expanduser().resolve()
    return p == root or root in p.parents


def resolve_export(out: Path, export: Path | None, overwrite_bundled: bool = False) -> Path:
    """The export folder: ``export``, default ``<out>/export``. One inside the package's bundled weights
    folder is a ``SystemExit`` unless ``overwrite_bundled`` (a training run must not replace the shipped models
    by accident)."""
    folder = Path(export) if export is not None else Path(out) / "export"
    if inside_bundled(folder) and not overwrite_bundled:
        raise SystemExit(f"--export {folder} is inside the package's bundled folder of weights ({_bundled_dir().parent}): "
                         "training would overwrite the shipped models. Give another folder (default <out>/export; copy the "
                         "bundled folder there to continue from it), or pass --overwrite-bundled if that is the intent")
    return folder


def _bundled_dir() -> Path:
    from regionedit.models.bundled import bundled_dir

    return bundled_dir()
