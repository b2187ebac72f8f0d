"""Train FireEdit (seed 003, :mod:`regionedit.methods.fireedit`) on edit pairs: the mixed-modal VL encoder with its
region-token and input / output projections, TATI and HVCA; the InstructPix2Pix UNet, VAE, CLIP and text encoder
never change.

Objective (:meth:`FireEdit.training_loss`): InstructPix2Pix's denoising loss (the scheduler's prediction type) on the
target latents, the source latents concatenated, the UNet conditioned on the TATI-weighted region-aware condition
and HVCA reading the source; region proposals built from the sample (true region, jittered box, distractors,
shuffled); guidance dropout as InstructPix2Pix trains. Data: any iterable of samples with ``source``, ``target``
((H, W, 3) uint8), ``mask`` ((H, W) region, 1 = edit) and ``instruction`` (attributes, as the shapes world's edit
samples, or dict keys, as :func:`regionedit.data.open_dataset` records); this module imports no world.

Resumable (:class:`regionedit.training.common.Run`: ``<out>/state.pt`` loaded with ``weights_only=True``,
``log.jsonl``, ``loss.png``); the data position is part of the checkpoint, so a resumed run reads the samples an
uninterrupted one would have. Exports :meth:`FireEdit.save_pretrained` to ``<out>/export`` (or ``--export``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable

import torch

from regionedit.training.method_runner import RunOptions, add_method_arguments, report, train_method


@dataclasses.dataclass
class FireEditTrainConfig:
    """batch_size: pairs per step; lr / weight_decay: AdamW on the method's parameters; seed: proposals, noise,
    dropout and the initial weights' generator."""

    batch_size: int = 8
    lr: float = 2e-4
    weight_decay: float = 1e-2
    seed: int = 0


def _objective(method) -> str:
    return (f"InstructPix2Pix denoising loss ({method.models.scheduler.config.prediction_type}) through the "
            "TATI-weighted region-aware condition and HVCA; proposals from the samples (true region, jittered box, "
            f"distractors); {method.config.cfg_drop:.0%} text / image / both dropped")


def train_fireedit(model, data: Iterable, opts: RunOptions, config=None,
                   train_config: FireEditTrainConfig | None = None) -> dict:
    """Train (or resume) FireEdit on ``model`` (a model folder with ``unet_ip2p``, or a bundled name) until
    ``opts.max_steps`` steps in all or ``opts.minutes`` of this call (:class:`RunOptions`: run folder, export,
    checkpoints, log); ``config`` / ``train_config``: the method's and the optimisation's settings.
    Returns the :func:`~regionedit.training.common.train_loop` result plus ``export``."""
    from regionedit.methods.fireedit import FireEdit, FireEditConfig

    tc = train_config or FireEditTrainConfig()
    # training proposals come from the samples: no localizer
    return train_method(lambda cfg: FireEdit(model, cfg, localizer=None), FireEditConfig,
                        config or FireEditConfig(init_seed=tc.seed), tc, data, opts, _objective)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="shapes-64", help="base model folder or bundled name, with its frozen 8-channel "
                                                        "unet_ip2p (default shapes-64)")
    p.add_argument("--no-region-tokens", action="store_true", help="ablation: no region tokens in the VL sequence")
    p.add_argument("--no-tati", action="store_true", help="ablation: no Time-Aware Target Injection (weight 1 always)")
    p.add_argument("--no-hvca", action="store_true", help="ablation: no Hybrid Visual Cross Attention")
    add_method_arguments(p, 2e-4, "folder receiving the trained modules (fireedit.safetensors, config.json, README.md)")


def run(args, data: Iterable, data_name: str) -> int:
    """The command line's job: :func:`train_fireedit` with the parsed ``args`` on ``data``."""
    from regionedit.methods.fireedit import FireEditConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = FireEditConfig(use_region_tokens=not args.no_region_tokens, use_tati=not args.no_tati,
                         use_hvca=not args.no_hvca, init_seed=args.seed)
    tc = FireEditTrainConfig(batch_size=args.batch, lr=args.lr, seed=args.seed)
    return report(train_fireedit(args.model, data, RunOptions.from_args(args, data_name), config=cfg, train_config=tc))


if __name__ == "__main__":
    sys.exit(print("use `regionedit train fireedit ...`") or 2)
