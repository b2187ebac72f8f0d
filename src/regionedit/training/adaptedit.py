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
from pathlib import Path

import numpy as np
import torch

from regionedit.training.common import Run, add_checkpoint_arguments, add_export_arguments, resolve_export, train_loop
from regionedit.training.descriptive import SampleStream


@dataclasses.dataclass
class AdaptEditTrainConfig:
    """batch_size: pairs per step; lr / weight_decay: AdamW on the method's parameters; p_drop_text: share of
    instructions dropped (guidance); seed: noise, drops and the initial weights' generator."""

    batch_size: int = 8
    lr: float = 5e-4
    weight_decay: float = 1e-2
    p_drop_text: float = 0.1
    seed: int = 0


def _fields(sample) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    get = (lambda k: sample.get(k)) if isinstance(sample, dict) else (lambda k: getattr(sample, k, None))
    row = tuple(get(k) for k in ("source", "target", "mask", "instruction"))
    missing = [k for k, v in zip(("source", "target", "mask", "instruction"), row) if v is None]
    if missing:
        raise TypeError(f"a training sample ({type(sample).__name__}) lacks {missing}; AdaptEdit trains on samples with "
                        "source, target ((H, W, 3) uint8), mask ((H, W), 1 = edit) and instruction (str)")
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


def train_adaptedit(dit, data: Iterable, out: str | Path, max_steps: int | None, minutes: float = 60.0,
                    config=None, train_config: AdaptEditTrainConfig | None = None, export: str | Path | None = None,
                    checkpoint_minutes: float = 3.0, checkpoint_steps: int | None = None, data_name: str = "caller's data",
                    progress: bool = False, log_every: int = 5) -> dict:
    """Train (or resume) AdaptEdit on ``dit`` (a DiT spec, :func:`regionedit.methods.adaptedit.resolve_dit`) until
    ``max_steps`` steps in all or ``minutes`` of this call; export to ``export`` (default ``<out>/export``).
    Returns the :func:`~regionedit.training.common.train_loop` result plus ``export``."""
    from regionedit.methods.adaptedit import AdaptEdit, AdaptEditConfig

    out = Path(out)
    tc = train_config or AdaptEditTrainConfig()
    run = Run(out, checkpoint_minutes, checkpoint_steps)
    config = config or AdaptEditConfig(init_seed=tc.seed)
    if run.exists():
        saved = run.load()
        config = AdaptEditConfig.from_dict(saved["method_config"])
        tc = AdaptEditTrainConfig(**saved["train_config"])
    method = AdaptEdit(dit, config)
    method.train()
    opt = torch.optim.AdamW(method.trainable_parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    stream = {"s": SampleStream(data)}

    def data_get():
        return {"used": stream["s"].used}

    def data_set(state):
        stream["s"] = SampleStream(data, skip=int(state["used"]))

    def step_fn(step, gen):
        src, tgt, region, ins = batch_tensors(stream["s"].take(tc.batch_size), method.native_size)
        loss, logs = method.training_loss(src, tgt, region, ins, gen, tc.p_drop_text)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(method.trainable_parameters(), 1.0)
        return logs

    res = train_loop(run, method.net, opt, step_fn, minutes, max_steps, tc.seed, log_every=log_every,
                     data_state=(data_get, data_set), samples_per_step=tc.batch_size, progress=progress,
                     extra_state=lambda: {"method_config": config.to_dict(), "train_config": dataclasses.asdict(tc)})
    method.eval()
    folder = Path(export) if export is not None else out / "export"
    record = {"steps": res["step"], "cpu_minutes": round(res["seconds"] / 60, 1), "batch_size": tc.batch_size,
              "lr": tc.lr, "samples_seen": res["step"] * tc.batch_size, "data": data_name,
              "objective": "rectified flow on target latents, region-aware weight on changed cells + MaskPredictor "
                           "BCE + Dice (decoupled), 10% instruction drop"}
    method.save_pretrained(folder, training=record)
    return {**res, "export": folder}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="run folder (state.pt, log.jsonl); resumes when it has one")
    p.add_argument("--dit", default="shapes-64", help="frozen DiT: a StableDiffusion3Pipeline folder, a model folder "
                                                      "with dit/, or a bundled name (default shapes-64)")
    p.add_argument("--max-steps", "--steps", dest="max_steps", type=int, default=2000, help="train until this many steps in all")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of this call (default 60)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=5, help="steps per log.jsonl record (losses averaged)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--no-gate", action="store_true", help="ablation: no SpatialGate (the adapters act everywhere)")
    p.add_argument("--region-aware-weight", type=float, default=4.0, help="Region-Aware Loss weight (0: ablation)")
    p.add_argument("--mask-loss-weight", type=float, default=1.0, help="MaskPredictor loss weight")
    add_checkpoint_arguments(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="tqdm bar")
    p.add_argument("--data", default=None, help="a dataset regionedit.data.open_dataset reads (edit pairs with an "
                                                "instruction); default: the shapes world's edit samples")
    p.add_argument("--split", default=None, help="split of --data")
    add_export_arguments(p, "folder receiving the trained adapters (adaptedit.safetensors, config.json, README.md)")


def run(args, data: Iterable, data_name: str) -> int:
    """The command line's job: :func:`train_adaptedit` with the parsed ``args`` on ``data``."""
    import json

    from regionedit.methods.adaptedit import AdaptEditConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    export = resolve_export(args.out, args.export, args.overwrite_bundled)
    cfg = AdaptEditConfig(use_gate=not args.no_gate, region_aware_weight=args.region_aware_weight,
                          mask_loss_weight=args.mask_loss_weight, init_seed=args.seed)
    tc = AdaptEditTrainConfig(batch_size=args.batch, lr=args.lr, seed=args.seed)
    res = train_adaptedit(args.dit, data, args.out, args.max_steps, args.minutes, config=cfg, train_config=tc,
                          export=export, checkpoint_minutes=args.checkpoint_minutes,
                          checkpoint_steps=args.checkpoint_steps, data_name=data_name, progress=args.progress,
                          log_every=args.log_every)
    print(json.dumps({"export": str(res["export"]), "step": res["step"], "interrupted": res["interrupted"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(print("use `regionedit train adaptedit ...`") or 2)
