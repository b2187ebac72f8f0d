"""Train seed 000, Region in Context (:mod:`regionedit.methods.region_in_context`), on edit pairs with the seed
methods' shared runner (:func:`regionedit.training.method_runner.train_method`: the resumable
:class:`~regionedit.training.common.Run`, the data position in the checkpoint, the export).

A sample is any object (or mapping) with ``source`` and ``target`` ((H, W, 3) uint8 RGB), ``mask`` ((H, W) bool,
the edited region; an empty mask means the whole image), ``instruction`` and ``target_caption`` (the scene-level
description of the edited image), and optionally ``region_description`` (what the region shows after the edit;
the seed's LVLM-written region description). Without one, ``describe_region(sample)`` is asked, and without that the
target caption stands in (the region loss then aligns the region with the whole scene's description: weaker, and
said so in the run's record). This module imports no world.

Each step draws ``batch_size`` samples, resizes them to the denoiser's native size (the conversions inference uses)
and minimises :meth:`~regionedit.methods.region_in_context.RegionInContext.training_losses` (the seed's
``L_denoise + L_region + L_global``, plus the ``x^_0`` terms) over the method's trainable parameters only (the new
modules; with ``train_unet`` also the UNet). AdamW, gradient clipping at norm 1. ``log.jsonl`` has the averaged
losses and the gate statistics (``gate_mean``, ``gate_std``, ``gate_frac_low``, ``gate_frac_high``: saturation
visible) every ``log_every`` steps; ``loss.png`` beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from regionedit.methods.region_in_context import (
    RegionInContext,
    RegionInContextConfig,
    gate_statistics,
    prepare_image,
    prepare_mask,
)
from regionedit.training.method_runner import RunOptions, Trainee, add_method_arguments, report, train_method


@dataclasses.dataclass
class RegionInContextTrainConfig:
    """Optimisation settings. batch_size: pairs per step; lr / weight_decay: AdamW on the trainable parameters;
    seed: noise, timesteps and dropout. The loss weights are the ``l_*`` of the total loss (the seed uses 1 for all
    three main terms); ``x0_weight`` scales the ``x^_0`` terms (0 skips the VAE decode and their CLIP passes);
    cfg_drop: guidance dropout of text, image and both (each this fraction)."""

    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.01
    seed: int = 0
    denoise_weight: float = 1.0
    region_weight: float = 1.0
    scene_weight: float = 1.0
    x0_weight: float = 0.1
    cfg_drop: float = 0.05

    def loss_kwargs(self) -> dict:
        """The keyword arguments of :meth:`RegionInContext.training_losses` these settings give."""
        return {"denoise_weight": self.denoise_weight, "region_weight": self.region_weight,
                "scene_weight": self.scene_weight, "x0_weight": self.x0_weight, "cfg_drop": self.cfg_drop}


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
        missing = [k for k in ("source", "target", "instruction", "target_caption") if _field(s, k) is None]
        if missing:
            raise TypeError(f"a training sample ({type(s).__name__}) lacks {missing}; Region in Context trains on "
                            "samples with source, target ((H, W, 3) uint8), instruction and target_caption (str), "
                            "and optionally mask and region_description")
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


class RegionInContextTrainee(Trainee):
    """A :class:`RegionInContext` as :func:`~regionedit.training.method_runner.train_method` trains it: ``net`` (the
    new weights, plus the UNet with ``train_unet``), :meth:`collate` (samples -> the loss's inputs, counting the
    region descriptions), :meth:`training_loss` (the seed's total loss and its terms and gate statistics as logs)."""

    def __init__(self, method: RegionInContext, describe_region: Callable[[Any], str] | None = None):
        parts = {"weights": method.weights}
        if method.config.train_unet:
            parts["unet"] = method.unet
        super().__init__(method, nn.ModuleDict(parts), method.size)
        self.describe_region = describe_region
        self.counters = {"region_texts_given": 0, "samples": 0}
        self.last_logs: dict[str, float] = {}

    def collate(self, samples: list) -> tuple:
        """``(source, target, masks, instructions, region_texts, scene_texts)`` of ``samples`` (:func:`collate`)."""
        batch, given = collate(samples, self.native_size, self.describe_region, self.method.device, self.method.dtype)
        self.counters["region_texts_given"] += given
        self.counters["samples"] += len(samples)
        return (batch.source, batch.target, batch.masks, batch.instructions, batch.region_texts, batch.scene_texts)

    def training_loss(self, source, target, masks, instructions, region_texts, scene_texts, generator,
                      **loss_kwargs) -> tuple[torch.Tensor, dict[str, float]]:
        losses = self.method.training_losses(source, target, masks, instructions, region_texts, scene_texts,
                                             generator, **loss_kwargs)
        logs = {k: float(v.detach()) for k, v in losses.items()}
        if self.method.last_gate is not None:
            st = gate_statistics(self.method.last_gate)
            logs.update({f"gate_{k}": st[k] for k in ("mean", "std", "frac_low", "frac_high") if k in st})
        self.last_logs = logs
        return losses["loss"], logs

    def training_record(self) -> dict:
        """The model card's extra lines: region descriptions used, the last step's losses and gate statistics."""
        c = self.counters
        rec = {"region_descriptions": (f"{c['region_texts_given']} of {c['samples']} samples had their own; the "
                                       "target caption stood in for the rest"),
               "last_losses": {k: round(v, 5) for k, v in self.last_logs.items()}}
        if self.method.last_gate is not None:
            rec["gate"] = gate_statistics(self.method.last_gate)
        return rec


def _objective(trainee: RegionInContextTrainee) -> str:
    kind = trainee.method.scheduler.config.prediction_type
    return (f"seed 000: InstructPix2Pix denoising loss ({kind}) conditioned on [instruction; region tokens] + "
            "region-level and scene-level contrastive losses (and their x^_0 terms); text / image / both dropped")


def train_region_in_context(model, data: Iterable, opts: RunOptions, config: RegionInContextConfig | None = None,
                            train_config: RegionInContextTrainConfig | None = None,
                            describe_region: Callable[[Any], str] | None = None) -> dict:
    """Train (or resume) Region in Context on ``model`` (a loaded ``Models`` or a folder / bundled name with the
    frozen ``unet_ip2p``) until ``opts.max_steps`` steps in all or ``opts.minutes`` of this call
    (:class:`~regionedit.training.method_runner.RunOptions`: run folder, export, checkpoints, log). A resumed run
    keeps its own method and train configs. ``describe_region``: the region description of a sample without one.
    Returns the :func:`~regionedit.training.common.train_loop` result plus ``export`` and ``method`` (the trainee;
    ``.method`` is the :class:`RegionInContext`)."""
    from regionedit import models as _models

    tc = train_config or RegionInContextTrainConfig()
    cfg = config or RegionInContextConfig(init_seed=tc.seed)
    loaded = {}

    def make(c: RegionInContextConfig) -> RegionInContextTrainee:
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            loaded.setdefault("m", _models.load(c.base or model))
            m = loaded["m"]
        else:
            m = model
        if c.base is None:  # the folder the frozen parts come from, in the export's config
            c = dataclasses.replace(c, base=str(getattr(m, "location", model)))
        return RegionInContextTrainee(RegionInContext.from_models(m, c), describe_region)

    return train_method(make, RegionInContextConfig, cfg, tc, data, opts, _objective,
                        loss_kwargs=lambda t: t.loss_kwargs())


# --------------------------------------------------------------------------------------------------
# command line: `regionedit train region_in_context` (wired by the app, which passes the data)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="shapes-64", help="base model folder or bundled name with clip, vae, "
                                                        "text_encoder and the frozen unet_ip2p (default shapes-64)")
    p.add_argument("--unet-subfolder", default="unet_ip2p", help="the base folder's InstructPix2Pix UNet to steer")
    p.add_argument("--x0-weight", type=float, default=0.1, help="weight of the x^_0 terms (0: skip them, faster)")
    p.add_argument("--gate", choices=("channel", "scalar"), default="channel")
    p.add_argument("--gate-off", action="store_true", help="the seed's ablation: g = 0 (no context)")
    p.add_argument("--train-unet", action="store_true", help="also train the InstructPix2Pix UNet (seed stage 3)")
    add_method_arguments(p, 1e-4, "folder receiving the trained method (config.json, model.safetensors, README.md)")


def run(args, data: Iterable, data_name: str) -> int:
    """The command line's job: :func:`train_region_in_context` with the parsed ``args`` on ``data``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = RegionInContextConfig(base=args.model, unet_subfolder=args.unet_subfolder, gate=args.gate,
                                gate_off=args.gate_off, train_unet=args.train_unet, init_seed=args.seed)
    tc = RegionInContextTrainConfig(batch_size=args.batch, lr=args.lr, seed=args.seed, x0_weight=args.x0_weight)
    return report(train_region_in_context(args.model, data, RunOptions.from_args(args, data_name), cfg, tc))


if __name__ == "__main__":
    sys.exit(print("use `regionedit train region_in_context ...`") or 2)
