"""Train AdaptEdit (seed 002, :mod:`regionedit.methods.adaptedit`) on edit pairs: the condition stream, the Block
Adapters, the SpatialGates and the MaskPredictor; the DiT, its VAE and text encoders never change.

Objective (:meth:`AdaptEdit.training_loss`): the rectified-flow loss on the target latents with the Region-Aware
weighting of the cells that change, plus the MaskPredictor's decoupled BCE + Dice loss; instructions dropped 10 %
for classifier-free guidance. Data: any iterable of samples with ``source``, ``target`` ((H, W, 3) uint8),
``mask`` ((H, W) region, 1 = edit) and ``instruction`` (attributes, as the shapes world's edit samples, or dict
keys, as :func:`regionedit.data.open_dataset` records); this module imports no world.

Resumable (:class:`regionedit.training.common.Run`: ``<out>/state.pt`` loaded with ``weights_only=True``,
``log.jsonl``, ``loss.png``); the data position is part of the checkpoint, so a resumed run reads the samples an
uninterrupted one would have. Exports :meth:`AdaptEdit.save_pretrained` to ``<out>/export`` (or ``--export``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable

import torch

from regionedit.training.method_runner import RunOptions, add_method_arguments, report, train_method


@dataclasses.dataclass
class AdaptEditTrainConfig:
    """batch_size: pairs per step; lr / weight_decay: AdamW on the method's parameters; p_drop_text: share of
    instructions dropped (guidance); seed: noise, drops and the initial weights' generator."""

    batch_size: int = 8
    lr: float = 5e-4
    weight_decay: float = 1e-2
    p_drop_text: float = 0.1
    seed: int = 0


OBJECTIVE = ("rectified flow on target latents, region-aware weight on changed cells + MaskPredictor BCE + Dice "
             "(decoupled), 10% instruction drop")


def train_adaptedit(dit, data: Iterable, opts: RunOptions, config=None,
                    train_config: AdaptEditTrainConfig | None = None) -> dict:
    """Train (or resume) AdaptEdit on ``dit`` (a DiT spec, :func:`regionedit.methods.adaptedit.resolve_dit`) until
    ``opts.max_steps`` steps in all or ``opts.minutes`` of this call (:class:`RunOptions`: run folder, export,
    checkpoints, log); ``config`` / ``train_config``: the method's and the optimisation's settings.
    Returns the :func:`~regionedit.training.common.train_loop` result plus ``export``."""
    from regionedit.methods.adaptedit import AdaptEdit, AdaptEditConfig

    tc = train_config or AdaptEditTrainConfig()
    return train_method(lambda cfg: AdaptEdit(dit, cfg), AdaptEditConfig, config or AdaptEditConfig(init_seed=tc.seed),
                        tc, data, opts, OBJECTIVE, loss_kwargs={"p_drop_text": tc.p_drop_text})


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dit", default="shapes-64", help="frozen DiT: a StableDiffusion3Pipeline folder, a model folder "
                                                      "with dit/, or a bundled name (default shapes-64)")
    p.add_argument("--no-gate", action="store_true", help="ablation: no SpatialGate (the adapters act everywhere)")
    p.add_argument("--region-aware-weight", type=float, default=4.0, help="Region-Aware Loss weight (0: ablation)")
    p.add_argument("--mask-loss-weight", type=float, default=1.0, help="MaskPredictor loss weight")
    add_method_arguments(p, 5e-4, "folder receiving the trained adapters (adaptedit.safetensors, config.json, README.md)")


def run(args, data: Iterable, data_name: str) -> int:
    """The command line's job: :func:`train_adaptedit` with the parsed ``args`` on ``data``."""
    from regionedit.methods.adaptedit import AdaptEditConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = AdaptEditConfig(use_gate=not args.no_gate, region_aware_weight=args.region_aware_weight,
                          mask_loss_weight=args.mask_loss_weight, init_seed=args.seed)
    tc = AdaptEditTrainConfig(batch_size=args.batch, lr=args.lr, seed=args.seed)
    return report(train_adaptedit(args.dit, data, RunOptions.from_args(args, data_name), config=cfg, train_config=tc))


if __name__ == "__main__":
    sys.exit(print("use `regionedit train adaptedit ...`") or 2)
