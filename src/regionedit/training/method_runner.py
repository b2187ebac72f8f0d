"""What the seed methods' trainers share (:mod:`.adaptedit`, :mod:`.fireedit`): edit-pair batches, the resumable
run (:class:`~regionedit.training.common.Run` + :func:`~regionedit.training.common.train_loop`, the data position in
the checkpoint), the export, and the common command-line options.

A method is any object with ``net`` (an ``nn.Module`` of everything that trains), ``trainable_parameters()``,
``native_size`` (pixels), ``training_loss(*batch, generator, **kw) -> (loss, logs)``, ``train()`` / ``eval()`` and
``save_pretrained(folder, training=record, dtype=...)``; its config has ``to_dict`` / ``from_dict``. ``batch`` is
``(source, target, region, instructions)`` (:func:`batch_tensors`) unless the method has ``collate(samples) -> tuple``
(Region in Context adds its region and scene texts; DescriptiveEdit reads target captions). Optional: a method's
``counters`` (a JSON-able dict, e.g. how many samples had a region description) is saved with the data position and
restored on resume.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from regionedit.training.common import Run, add_checkpoint_arguments, add_export_arguments, resolve_export, train_loop


class Trainee:
    """Base of the adapters that let a method train through :func:`train_method` when the method itself does not
    have the runner's interface: ``method`` (the wrapped method), ``net`` (the ``nn.Module`` of everything that
    trains, what the checkpoint holds), ``native_size``, ``config`` (the method's, with ``to_dict``);
    ``trainable_parameters`` / ``save_pretrained`` are the method's. Subclasses add ``collate`` and
    ``training_loss`` (and optionally ``counters`` / ``training_record``)."""

    def __init__(self, method, net: torch.nn.Module, native_size: int):
        self.method, self.net, self.native_size = method, net, int(native_size)
        self.config = method.config

    def trainable_parameters(self) -> list:
        return self.method.trainable_parameters()

    def train(self) -> None:
        self.net.train()

    def eval(self) -> None:
        self.net.eval()

    def save_pretrained(self, folder, training: dict | None = None, dtype: torch.dtype = torch.float32):
        return self.method.save_pretrained(folder, training=training, dtype=dtype)


class EndlessSamples:
    """Samples from ``source`` forever: re-iterates a finite iterable (epochs), skips ``skip`` samples first (a
    resumed run's position: the source must restart in the same order, as a list, a dataset or a seeded stream do).
    ``used``: samples taken so far, the skipped ones included."""

    def __init__(self, source: Iterable, skip: int = 0):
        self.source = source
        self.it: Iterator = iter(source)
        self.used = 0
        for _ in range(skip):
            self.next()

    def next(self) -> Any:
        try:
            s = next(self.it)
        except StopIteration:
            it = iter(self.source)
            if it is self.it:
                raise ValueError("the data source ran out and cannot restart (it is a one-shot iterator); pass a list, "
                                 "an object whose __iter__ starts over, or an endless iterator") from None
            self.it = it
            try:
                s = next(self.it)
            except StopIteration:
                raise ValueError("the data source is empty") from None
        self.used += 1
        return s

    def take(self, n: int) -> list:
        return [self.next() for _ in range(n)]


def _fields(sample) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    get = (lambda k: sample.get(k)) if isinstance(sample, dict) else (lambda k: getattr(sample, k, None))
    row = tuple(get(k) for k in ("source", "target", "mask", "instruction"))
    missing = [k for k, v in zip(("source", "target", "mask", "instruction"), row) if v is None]
    if missing:
        raise TypeError(f"a training sample ({type(sample).__name__}) lacks {missing}; the seed methods train on samples "
                        "with source, target ((H, W, 3) uint8), mask ((H, W), 1 = edit) and instruction (str)")
    return row  # type: ignore[return-value]


def batch_tensors(samples: list, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Samples -> (source (B, 3, S, S), target (B, 3, S, S)) in [-1, 1], region (B, 1, S, S) in [0, 1], instructions."""
    from regionedit.methods.descriptive_edit import _resize, images_to_tensor

    rows = [_fields(s) for s in samples]
    src = images_to_tensor([r[0] for r in rows], size)
    tgt = images_to_tensor([r[1] for r in rows], size)
    masks = [(_resize((np.asarray(r[2], dtype=np.float32) > 0.5).astype(np.uint8) * 255, (size, size)) > 127)
             for r in rows]
    region = torch.from_numpy(np.stack(masks).astype(np.float32))[:, None]
    return src, tgt, region, [str(r[3]) for r in rows]


@dataclasses.dataclass
class RunOptions:
    """Where a seed-method training run writes and how long it goes (the method's own settings are its configs).

    out: run folder (``state.pt``, ``log.jsonl``, ``loss.png``; a folder with a checkpoint resumes);
    max_steps: train until this many steps in all (None: until ``minutes``); minutes: wall-clock budget of this call;
    export: folder receiving the trained method (None: ``<out>/export``); checkpoint_minutes / checkpoint_steps:
    checkpoint at least this often; data_name: the data as the model card names it; progress: tqdm bar;
    log_every: steps per ``log.jsonl`` record."""

    out: Path
    max_steps: int | None = None
    minutes: float = 60.0
    export: Path | None = None
    checkpoint_minutes: float = 3.0
    checkpoint_steps: int | None = None
    data_name: str = "caller's data"
    progress: bool = False
    log_every: int = 5
    export_dtype: torch.dtype = torch.float32

    @classmethod
    def from_args(cls, args: argparse.Namespace, data_name: str) -> "RunOptions":
        """The options :func:`add_method_arguments` parsed; the export is checked by
        :func:`~regionedit.training.common.resolve_export` (never into the package's bundled weights by default)."""
        return cls(out=Path(args.out), max_steps=args.max_steps, minutes=args.minutes,
                   export=resolve_export(args.out, args.export, args.overwrite_bundled),
                   checkpoint_minutes=args.checkpoint_minutes, checkpoint_steps=args.checkpoint_steps,
                   data_name=data_name, progress=args.progress, log_every=args.log_every,
                   export_dtype=torch.float16 if args.fp16_export else torch.float32)


def train_method(make_method: Callable, config_cls, config, train_config, data: Iterable, opts: RunOptions,
                 objective, loss_kwargs: dict | Callable[[Any], dict] | None = None, grad_clip: float | None = 1.0,
                 run_info: dict | None = None, check_resume: Callable[[dict], None] | None = None) -> dict:
    """Train (or resume) the method ``make_method(config)`` on ``data`` until ``opts.max_steps`` steps in all or
    ``opts.minutes`` of this call, then export it to ``opts.export`` (default ``<out>/export``). A resumed run keeps
    its saved method and train configs; ``run_info`` (JSON-able, e.g. the base model) is saved with them, and
    ``check_resume(saved)`` (the saved ``method_config``, ``train_config``, ``run_info``, ``step``) may refuse a run
    that is not this one (raise).
    ``train_config``: a dataclass with ``batch_size``, ``lr``, ``weight_decay``, ``seed``; ``objective``: the card's
    words, or a function of the method returning them; ``loss_kwargs``: keyword arguments of ``training_loss``, or a
    function of the (possibly resumed) train config returning them; ``grad_clip``: gradient-norm clip (None: off).
    The export's training record is this function's (steps, time, batch, lr, samples, data, objective) plus the
    method's ``training_record()`` when it has one. Returns the :func:`~regionedit.training.common.train_loop` result
    plus ``export`` and ``method``."""
    out = Path(opts.out)
    tc = train_config
    run = Run(out, opts.checkpoint_minutes, opts.checkpoint_steps)
    if run.exists():
        saved = run.load()
        if check_resume is not None:
            check_resume({k: saved.get(k) for k in ("method_config", "train_config", "run_info", "step")})
        config = config_cls.from_dict(saved["method_config"])
        tc = type(tc)(**saved["train_config"])
    method = make_method(config)
    method.train()
    params = list(method.trainable_parameters())
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    stream = {"s": EndlessSamples(data)}
    kwargs = loss_kwargs(tc) if callable(loss_kwargs) else dict(loss_kwargs or {})
    collate = getattr(method, "collate", None) or (lambda samples: batch_tensors(samples, method.native_size))

    def data_get():
        state = {"used": stream["s"].used}
        if getattr(method, "counters", None) is not None:
            state["counters"] = dict(method.counters)
        return state

    def data_set(state):
        stream["s"] = EndlessSamples(data, skip=int(state["used"]))
        if state.get("counters") is not None and getattr(method, "counters", None) is not None:
            method.counters.update(state["counters"])

    def step_fn(step, gen):
        batch = collate(stream["s"].take(tc.batch_size))
        loss, logs = method.training_loss(*batch, gen, **kwargs)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        return logs

    res = train_loop(run, method.net, opt, step_fn, opts.minutes, opts.max_steps, tc.seed, log_every=opts.log_every,
                     data_state=(data_get, data_set), samples_per_step=tc.batch_size, progress=opts.progress,
                     extra_state=lambda: {"method_config": config.to_dict(), "train_config": dataclasses.asdict(tc),
                                          "run_info": dict(run_info or {})})
    method.eval()
    folder = Path(opts.export) if opts.export is not None else out / "export"
    record = {"steps": res["step"], "cpu_minutes": round(res["seconds"] / 60, 1), "batch_size": tc.batch_size,
              "lr": tc.lr, "samples_seen": res["step"] * tc.batch_size, "data": opts.data_name,
              "objective": objective(method) if callable(objective) else objective}
    if hasattr(method, "training_record"):
        record.update(method.training_record())
    method.save_pretrained(folder, training=record, dtype=opts.export_dtype)
    return {**res, "export": folder, "method": method}


def add_method_arguments(p: argparse.ArgumentParser, lr: float, export_what: str) -> None:
    """The options every seed-method trainer has (its own base-model and ablation options come beside them)."""
    p.add_argument("--out", type=Path, required=True, help="run folder (state.pt, log.jsonl); resumes when it has one")
    p.add_argument("--max-steps", "--steps", dest="max_steps", type=int, default=2000, help="train until this many steps in all")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of this call (default 60)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=5, help="steps per log.jsonl record (losses averaged)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    add_checkpoint_arguments(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="tqdm bar")
    p.add_argument("--data", default=None, help="a dataset regionedit.data.open_dataset reads (edit pairs with an "
                                                "instruction); default: the shapes world's edit samples")
    p.add_argument("--split", default=None, help="split of --data")
    add_export_arguments(p, export_what)
    p.add_argument("--fp16-export", action="store_true", help="export the trained weights in fp16 (a bundle's copy; "
                                                              "rerun a finished run with it to re-export)")


def report(res: dict) -> int:
    """Print a finished run's export, step and whether it was interrupted (one JSON line); exit code 0."""
    print(json.dumps({"export": str(res["export"]), "step": res["step"], "interrupted": res["interrupted"]}), flush=True)
    return 0
