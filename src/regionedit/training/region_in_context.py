"""Training seed 000, Region in Context (:mod:`regionedit.methods.region_in_context`): a small, resumable trainer
over any iterable of edit samples.

A sample is any object (or mapping) with ``source`` and ``target`` ((H, W, 3) uint8 RGB), ``mask`` ((H, W) bool,
the edited region; an empty mask means the whole image), ``instruction`` and ``target_caption`` (the scene-level
description of the edited image), and optionally ``region_description`` (what the region shows after the edit;
the seed's LVLM-written region description). Without one, ``describe_region(sample)`` is asked, and without that the
target caption stands in (the region loss then aligns the region with the whole scene's description: weaker, and
said so in the run's record).

Each step draws ``batch`` samples, resizes them to the denoiser's native size (the conversions inference uses)
and minimises :meth:`~regionedit.methods.region_in_context.RegionInContext.training_losses` (the seed's
``L_denoise + L_region + L_global``, plus the ``x^_0`` terms) over the method's trainable parameters only (the new
modules; with ``train_unet`` also the UNet). AdamW, gradient clipping.

Checkpoints (``<out>/checkpoint.safetensors`` + ``<out>/checkpoint.json``, safetensors and JSON only: nothing is
unpickled) hold the trainable weights, the optimizer's state, the random generator's state, the step and the
number of samples consumed; a new trainer on the same ``out`` resumes from them and takes the same next step
(the data iterable is restarted and the consumed samples skipped, so it must yield the same sequence again: a
list, a dataset, or a seeded generator factory; a one-shot iterator cannot be replayed). ``log.jsonl`` has the
averaged losses and the gate statistics every ``log_every`` steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from regionedit.methods.region_in_context import (
    RegionInContext,
    RegionInContextConfig,
    gate_statistics,
    prepare_image,
    prepare_mask,
)

CHECKPOINT = "checkpoint.safetensors"
STATE = "checkpoint.json"
LOG = "log.jsonl"


@dataclasses.dataclass
class RegionInContextTrainConfig:
    """Optimisation settings. The loss weights are the ``l_*`` of the total loss (the seed uses 1 for all three
    main terms); ``x0_weight`` scales the ``x^_0`` terms (0 skips the VAE decode and their CLIP passes)."""

    batch: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    denoise_weight: float = 1.0
    region_weight: float = 1.0
    scene_weight: float = 1.0
    x0_weight: float = 0.1
    cfg_drop: float = 0.05
    checkpoint_steps: int | None = None
    checkpoint_minutes: float = 3.0
    log_every: int = 10


@dataclasses.dataclass
class Batch:
    """Tensors at the native size S: ``source``/``target`` (B, 3, S, S) in [-1, 1], ``masks`` (B, S, S) in {0, 1}."""

    source: torch.Tensor
    target: torch.Tensor
    masks: torch.Tensor
    instructions: list[str]
    region_texts: list[str]
    scene_texts: list[str]


def _field(sample: Any, name: str, default: Any = None) -> Any:
    if isinstance(sample, dict):
        return sample.get(name, default)
    return getattr(sample, name, default)


def region_text(sample: Any, describe_region: Callable[[Any], str] | None = None) -> tuple[str, bool]:
    """``(text, given)``: the sample's region description (``region_description``, else ``describe_region``),
    ``given`` False when the target caption stands in."""
    text = _field(sample, "region_description")
    if text:
        return str(text), True
    if describe_region is not None:
        return str(describe_region(sample)), True
    return str(_field(sample, "target_caption")), False


def collate(samples: list, size: int, describe_region: Callable[[Any], str] | None = None,
            device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[Batch, int]:
    """``(batch, n_given)``: samples as tensors at ``size`` (:func:`prepare_image` / :func:`prepare_mask`, as at
    inference), and how many had a region description of their own."""
    src, tgt, masks, ins, reg, scene = [], [], [], [], [], []
    given = 0
    for s in samples:
        source, target = np.asarray(_field(s, "source")), np.asarray(_field(s, "target"))
        if source.shape != target.shape:
            raise ValueError(f"source {source.shape} and target {target.shape} differ in shape")
        src.append(prepare_image(source, size))
        tgt.append(prepare_image(target, size))
        mask = _field(s, "mask")
        masks.append(prepare_mask(None if mask is None else np.asarray(mask), source.shape[:2], size))
        ins.append(str(_field(s, "instruction")))
        text, ok = region_text(s, describe_region)
        reg.append(text)
        given += ok
        scene.append(str(_field(s, "target_caption")))
    to = dict(device=device, dtype=dtype)
    return Batch(torch.cat(src).to(**to), torch.cat(tgt).to(**to), torch.cat(masks).to(**to), ins, reg, scene), given


# --------------------------------------------------------------------------------------------------
# checkpoint files: safetensors (tensors) + JSON (everything else)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt.{idx}.{k}"] = v.detach().cpu().contiguous().clone()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, idx, k = key.split(".", 2)
            state.setdefault(int(idx), {})[k] = v
    for key, v in meta["scalars"].items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


class RegionInContextTrainer:
    """Train a :class:`RegionInContext` on ``data`` (an iterable of samples, module docstring) in ``out``.

    >>> trainer = RegionInContextTrainer(method, samples, "runs/ric", RegionInContextTrainConfig(batch=8))
    >>> trainer.train(max_steps=1000, minutes=60)     # resumes when runs/ric holds a checkpoint
    >>> trainer.export("runs/ric/export")              # RegionInContext.save_pretrained + the training record
    """

    def __init__(self, method: RegionInContext, data: Iterable, out: str | Path,
                 config: RegionInContextTrainConfig | None = None,
                 describe_region: Callable[[Any], str] | None = None, resume: bool = True):
        self.method, self.data = method, data
        self.config = config or RegionInContextTrainConfig()
        self.describe_region = describe_region
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.params = method.trainable_parameters()
        self.optimizer = torch.optim.AdamW(self.params, lr=self.config.lr, weight_decay=self.config.weight_decay)
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.step_count, self.consumed, self.seconds = 0, 0, 0.0
        self.region_texts_given, self.region_texts_total = 0, 0
        self.last_losses: dict[str, float] = {}
        self._iter: Iterator | None = None
        if resume and (self.out / STATE).exists():
            self.load_checkpoint()

    # -- data -------------------------------------------------------------------------------------------
    def _pull(self) -> Any:
        if self._iter is None:
            self._iter = iter(self.data)
        try:
            return next(self._iter)
        except StopIteration:
            self._iter = iter(self.data)  # the next epoch
            try:
                return next(self._iter)
            except StopIteration:
                raise ValueError("the training data yielded no samples (a one-shot iterator that ran out? pass a "
                                 "list, a dataset or another re-iterable)") from None

    def _next_samples(self, n: int) -> list:
        if self._iter is None and self.consumed:
            for _ in range(self.consumed):  # resume: replay the data up to where the checkpoint was
                self._pull()
        return [self._pull() for _ in range(n)]

    def _batch(self, samples: list) -> Batch:
        batch, given = collate(samples, self.method.size, self.describe_region, self.method.device, self.method.dtype)
        self.region_texts_given += given
        self.region_texts_total += len(samples)
        return batch

    def _losses(self, batch: Batch, generator: torch.Generator, cfg_drop: float) -> dict[str, torch.Tensor]:
        c = self.config
        return self.method.training_losses(
            batch.source, batch.target, batch.masks, batch.instructions, batch.region_texts, batch.scene_texts,
            generator, denoise_weight=c.denoise_weight, region_weight=c.region_weight, scene_weight=c.scene_weight,
            x0_weight=c.x0_weight, cfg_drop=cfg_drop)

    def _modes(self, train: bool) -> None:
        self.method.weights.train(train)
        if self.method.config.train_unet:
            self.method.unet.train(train)

    # -- steps ------------------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        """One optimisation step on the next ``batch`` samples; returns its losses (computed before the update)."""
        t0 = time.time()
        batch = self._batch(self._next_samples(self.config.batch))
        self._modes(True)
        losses = self._losses(batch, self.generator, self.config.cfg_drop)
        losses["loss"].backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._modes(False)
        self.step_count += 1
        self.consumed += len(batch.instructions)
        self.seconds += time.time() - t0
        self.last_losses = {k: float(v.detach()) for k, v in losses.items()}
        return self.last_losses

    @torch.no_grad()
    def evaluate(self, samples: list, seed: int = 0) -> dict[str, float]:
        """The losses on ``samples`` with noise and timesteps from ``seed`` (the same every call: a fixed yardstick)
        and no guidance dropout; changes no state (data position, generator, weights)."""
        batch, _ = collate(samples, self.method.size, self.describe_region, self.method.device, self.method.dtype)
        self._modes(False)
        losses = self._losses(batch, torch.Generator().manual_seed(seed), 0.0)
        return {k: float(v) for k, v in losses.items()}

    def train(self, max_steps: int | None = None, minutes: float = 5.0) -> dict:
        """Steps until ``max_steps`` in total (counting those before a resume) or ``minutes`` of wall time in this
        call; checkpoints every ``checkpoint_steps`` / ``checkpoint_minutes`` and at the end."""
        c = self.config
        start = last_ckpt = time.time()
        acc: dict[str, float] = {}
        n_acc = 0
        while (time.time() - start) < minutes * 60 and (max_steps is None or self.step_count < max_steps):
            losses = self.step()
            for k, v in losses.items():
                acc[k] = acc.get(k, 0.0) + v
            n_acc += 1
            if c.log_every and self.step_count % c.log_every == 0:
                self._log({k: v / n_acc for k, v in acc.items()})
                acc, n_acc = {}, 0
            if (c.checkpoint_steps and self.step_count % c.checkpoint_steps == 0) or \
                    (time.time() - last_ckpt) > c.checkpoint_minutes * 60:
                self.save_checkpoint()
                last_ckpt = time.time()
        self.save_checkpoint()
        return {"step": self.step_count, "seconds": self.seconds, "losses": self.last_losses}

    def _log(self, losses: dict[str, float]) -> None:
        rec = {"step": self.step_count, "minutes": round(self.seconds / 60, 3), **losses}
        if self.method.last_gate is not None:
            rec["gate"] = gate_statistics(self.method.last_gate)
        with open(self.out / LOG, "a") as f:
            f.write(json.dumps(rec) + "\n")

    # -- checkpoints ------------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically (tensors to safetensors, the rest to JSON; the JSON is replaced last)."""
        from safetensors.torch import save_file

        tensors = {f"weights.{k}": v.detach().cpu().contiguous().clone() for k, v in self.method.weights.state_dict().items()}
        if self.method.config.train_unet:
            tensors.update({f"unet.{k}": v.detach().cpu().contiguous().clone() for k, v in self.method.unet.state_dict().items()})
        opt_tensors, opt_meta = _flatten_optimizer(self.optimizer)
        tensors.update(opt_tensors)
        tensors["rng.generator"] = self.generator.get_state()
        tensors["meta.step"] = torch.tensor([self.step_count], dtype=torch.int64)
        meta = {"step": self.step_count, "consumed": self.consumed, "seconds": self.seconds,
                "last_losses": self.last_losses,
                "region_texts_given": self.region_texts_given, "region_texts_total": self.region_texts_total,
                "optimizer": opt_meta, "train_config": dataclasses.asdict(self.config),
                "method_config": dataclasses.asdict(self.method.config)}
        tmp_t, tmp_j = self.out / (CHECKPOINT + ".tmp"), self.out / (STATE + ".tmp")
        save_file(tensors, str(tmp_t))
        tmp_j.write_text(json.dumps(meta, indent=1) + "\n")
        os.replace(tmp_t, self.out / CHECKPOINT)
        os.replace(tmp_j, self.out / STATE)
        if (self.out / LOG).exists():  # the loss curves beside the log
            from regionedit.training.curves import plot_losses

            plot_losses(self.out / LOG, keys=("loss", "denoise", "region", "scene", "region_x0", "scene_x0"))

    def load_checkpoint(self) -> None:
        """Restore weights, optimizer, generator, step and data position from ``out`` (safetensors + JSON)."""
        from safetensors.torch import load_file

        meta = json.loads((self.out / STATE).read_text())
        tensors = load_file(str(self.out / CHECKPOINT))
        if int(tensors["meta.step"][0]) != meta["step"]:
            raise ValueError(f"{self.out}: {CHECKPOINT} (step {int(tensors['meta.step'][0])}) and {STATE} (step "
                             f"{meta['step']}) disagree: an interrupted write; delete both to start again")
        if meta["method_config"].get("train_unet") != self.method.config.train_unet:
            raise ValueError(f"{self.out} was trained with train_unet={meta['method_config'].get('train_unet')}, "
                             f"this method has train_unet={self.method.config.train_unet}")
        dt = self.method.dtype
        self.method.weights.load_state_dict(
            {k[len("weights."):]: v.to(dt) for k, v in tensors.items() if k.startswith("weights.")}, strict=True)
        if self.method.config.train_unet:
            self.method.unet.load_state_dict(
                {k[len("unet."):]: v.to(dt) for k, v in tensors.items() if k.startswith("unet.")}, strict=True)
        self.optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
        self.generator.set_state(tensors["rng.generator"])
        self.step_count, self.consumed, self.seconds = meta["step"], meta["consumed"], meta["seconds"]
        self.last_losses = {k: v for k, v in (meta.get("last_losses") or {}).items() if k != "minutes"}
        self.region_texts_given = meta.get("region_texts_given", 0)
        self.region_texts_total = meta.get("region_texts_total", 0)
        self._iter = None
        log = self.out / LOG
        if log.exists():  # steps logged after this checkpoint by a run that was killed run again
            keep = [ln for ln in log.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= self.step_count]
            log.write_text("".join(ln + "\n" for ln in keep))
            if not self.last_losses and keep:  # a checkpoint from before last_losses was saved: the last logged ones
                last = json.loads(keep[-1])
                self.last_losses = {k: v for k, v in last.items() if isinstance(v, float) and k != "minutes"}

    # -- export -----------------------------------------------------------------------------------------
    def record(self) -> dict:
        """The training record for the model card / ``training_state.json``."""
        rec = {"steps": self.step_count, "cpu_minutes": round(self.seconds / 60, 2), "samples_seen": self.consumed,
               "train_config": dataclasses.asdict(self.config), "last_losses": self.last_losses,
               "region_descriptions": (f"{self.region_texts_given} of {self.region_texts_total} samples had their own; "
                                       "the target caption stood in for the rest")}
        if self.method.last_gate is not None:
            rec["gate"] = gate_statistics(self.method.last_gate)
        return rec

    def export(self, folder: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        """``method.save_pretrained(folder, training=record)`` (fp16 with ``dtype=torch.float16`` for a bundle)."""
        return self.method.save_pretrained(folder, training=self.record(), dtype=dtype)


# --------------------------------------------------------------------------------------------------
# command line: `regionedit train region_in_context` (wired by the app, which passes the data)


def build_parser() -> argparse.ArgumentParser:
    from regionedit.training.common import add_checkpoint_arguments, add_export_arguments

    p = argparse.ArgumentParser(prog="regionedit train region_in_context",
                                description="Train seed 000, Region in Context (resumable; the base UNet stays frozen "
                                            "unless --train-unet)")
    p.add_argument("--model", default="shapes-64", help="base model folder with clip, vae, text_encoder, unet_ip2p")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, log); resumes when it has one")
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--x0-weight", type=float, default=0.1)
    p.add_argument("--gate", choices=("channel", "scalar"), default="channel")
    p.add_argument("--gate-off", action="store_true", help="the seed's ablation: g = 0 (no context)")
    p.add_argument("--train-unet", action="store_true", help="also train the InstructPix2Pix UNet (seed stage 3)")
    p.add_argument("--fp16-export", action="store_true", help="export the new weights in fp16 (bundle size)")
    add_checkpoint_arguments(p)
    add_export_arguments(p, "folder receiving the trained method (config.json, model.safetensors, README.md)")
    return p


def main(argv: list[str] | None = None, data: Iterable | None = None,
         describe_region: Callable[[Any], str] | None = None) -> dict:
    """Train on ``data`` (the app passes its data source: this module imports none) and export."""
    from regionedit import models as _models
    from regionedit.training.common import resolve_export

    args = build_parser().parse_args(argv)
    if data is None:
        raise SystemExit("region_in_context training needs a data source (samples with source, target, mask, "
                         "instruction, target_caption); the command line passes one")
    export = resolve_export(args.out, args.export, args.overwrite_bundled)
    config = RegionInContextConfig(base=args.model, gate=args.gate, gate_off=args.gate_off, train_unet=args.train_unet)
    state = args.out / STATE
    if state.exists():  # a resumed run keeps the method settings it started with
        saved = json.loads(state.read_text())["method_config"]
        config = RegionInContextConfig(**saved)
    method = RegionInContext.from_models(_models.load(config.base), config)
    tc = RegionInContextTrainConfig(batch=args.batch, lr=args.lr, seed=args.seed, x0_weight=args.x0_weight,
                                    checkpoint_steps=args.checkpoint_steps, checkpoint_minutes=args.checkpoint_minutes)
    trainer = RegionInContextTrainer(method, data, args.out, tc, describe_region)
    res = trainer.train(args.max_steps, args.minutes)
    trainer.export(export, torch.float16 if args.fp16_export else torch.float32)
    print(json.dumps({"export": str(export), **res}), flush=True)
    return res
