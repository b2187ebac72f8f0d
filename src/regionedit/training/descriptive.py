"""Train the Attention Bridges of seed 004 (DescriptiveEdit, :mod:`regionedit.methods.descriptive_edit`) on
``(source, target, target description)`` triples; the base UNet (and the Ref-UNet, the same frozen weights) never
change.

Objective (seed 004, "Loss & Training"), the latent-diffusion loss with Diffusion Forcing:

    L = E[ || y - eps_theta(Z_e^t, t, T_e, Z_o^s, s) ||^2 ],  s = 0

noise only on the edited image's latents ``Z_e^0`` (timestep t ~ U{0..T-1}); the reference ``Z_o^0`` stays clean
(s = 0, the Ref-UNet's input); ``y`` is the scheduler's target (the noise for epsilon models, the velocity for
v-prediction ones such as the bundled shapes-64). The description and the source image are each dropped
independently with probability 5 % (``p_drop_text``: null text; ``p_drop_image``: bridges off for that sample),
so the model learns the three predictions the dual guidance combines. AdamW (seed: lr 1e-5, LoRA rank 64 =
alpha, on SD 1.5; the default lr here, 1e-4, is for the miniature models).

Data: any iterable of samples with ``.source`` and ``.target`` ((H, W, 3) uint8 RGB) and ``.target_caption``
(str, the description of the target image), or record dicts with those keys (``regionedit.data.load_dataset``'s
records whose ``target`` and ``target_caption`` are set); this module imports no world. A finite iterable is re-iterated
(epochs); on resume the trainer re-iterates it from the start and skips the samples it already used, so a
resumed run sees the same batches as an uninterrupted one when the iterable restarts deterministically.

Resumable, and nothing is pickled: ``<out>/state.safetensors`` holds the bridge weights, the AdamW state and the
sampling generator, with the step count and settings as JSON in its metadata (one file, replaced atomically);
``<out>/log.jsonl`` one line per step; the bridges are exported to ``<out>/export``
(:meth:`DescriptiveEdit.save_pretrained`: ``bridges.safetensors`` + ``config.json`` + model card).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from regionedit.training.common import truncate_jsonl

STATE_NAME = "state.safetensors"


@dataclasses.dataclass
class DescriptiveTrainConfig:
    """Trainer settings (saved with the run).

    batch_size: triples per step. lr / weight_decay: AdamW on the bridge parameters only.
    p_drop_text / p_drop_image: the seed's 5 % independent drops of the description and of the source image.
    seed: the generator of timesteps, noise and drops. checkpoint_steps: checkpoint every this many steps (and at
    the end).
    """

    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 1e-2
    p_drop_text: float = 0.05
    p_drop_image: float = 0.05
    seed: int = 0
    checkpoint_steps: int = 50

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.checkpoint_steps < 1:
            raise ValueError(f"checkpoint_steps must be >= 1, got {self.checkpoint_steps}")
        for name in ("p_drop_text", "p_drop_image"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def prepare_batch(method, samples: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Samples -> (source latents (B, 4, h, w), target latents (B, 4, h, w), description embeddings (B, L, D)),
    images resized to the method's native size and encoded by the frozen VAE (distribution mode)."""
    from regionedit.methods.descriptive_edit import images_to_tensor

    rows = [_triple(s) for s in samples]
    size = method.native_size
    both = method.encode_images(images_to_tensor([r[0] for r in rows] + [r[1] for r in rows], size))
    src, tgt = both[: len(rows)], both[len(rows):]
    emb = method.encode_text([r[2] for r in rows])
    return src, tgt, emb


def _triple(sample) -> tuple:
    """(source, target, target_caption) of a sample object (attributes, e.g. the world's ``EditSample``) or record
    dict (keys, e.g. :func:`regionedit.data.load_dataset`'s records)."""
    get = (lambda k: sample.get(k)) if isinstance(sample, dict) else (lambda k: getattr(sample, k, None))
    row = tuple(get(k) for k in ("source", "target", "target_caption"))
    missing = [k for k, v in zip(("source", "target", "target_caption"), row) if v is None]
    if missing:
        raise TypeError(f"a training sample ({type(sample).__name__}) lacks {missing}; DescriptiveEdit trains on samples "
                        "with source and target ((H, W, 3) uint8) and target_caption (str), as attributes or dict keys")
    return row[0], row[1], str(row[2])


def descriptive_loss(method, source_latents: torch.Tensor, target_latents: torch.Tensor, text_emb: torch.Tensor,
                     null_emb: torch.Tensor, scheduler, generator: torch.Generator, p_drop_text: float = 0.05,
                     p_drop_image: float = 0.05) -> torch.Tensor:
    """The seed's objective on one batch (see the module docstring); gradients reach the bridges only.
    ``null_emb``: (1, L, D) null-text embedding. Draws t, noise and the drops from ``generator`` (CPU), in that
    order."""
    b = target_latents.shape[0]
    dev, dt = target_latents.device, target_latents.dtype
    n_train = int(scheduler.config.num_train_timesteps)
    t = torch.randint(0, n_train, (b,), generator=generator)
    noise = torch.randn(target_latents.shape, generator=generator).to(dev, dt)
    drop_text = torch.rand(b, generator=generator) < p_drop_text
    keep_image = (torch.rand(b, generator=generator) >= p_drop_image).to(dev, dt)
    t = t.to(dev)
    noisy = scheduler.add_noise(target_latents, noise, t)  # Z_e^t: only the edited image is noised
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        y = noise
    elif kind == "v_prediction":
        y = scheduler.get_velocity(target_latents, noise, t)
    elif kind == "sample":
        y = target_latents
    else:
        raise ValueError(f"unsupported prediction_type {kind!r}")
    emb = torch.where(drop_text.to(dev).view(-1, 1, 1), null_emb.expand_as(text_emb), text_emb)
    reference = method.reference_features(source_latents)  # Z_o^s at s = 0 (clean), frozen Ref-UNet
    pred = method.predict_noise(noisy, t, emb, reference, keep_image)
    return F.mse_loss(pred.float(), y.float())


class SampleStream:
    """Samples from ``source`` forever: re-iterates a finite iterable, skips ``skip`` samples first."""

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


# -- checkpoints: safetensors + JSON metadata, never pickle -----------------------------------------------------
def _save_state(path: Path, method, optimizer: torch.optim.Optimizer, generator: torch.Generator, meta: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"bridges.{k}": v.detach().cpu().contiguous() for k, v in method.bridges.state_dict().items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for idx, st in opt["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    tensors["generator"] = generator.get_state()
    meta = {**meta, "optim_param_groups": opt["param_groups"], "optim_scalars": scalars}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"state": json.dumps(meta)})
    os.replace(tmp, path)


def _load_state(path: Path) -> tuple[dict, dict]:
    """(tensors, meta) of a checkpoint written by :func:`_save_state`."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise SystemExit(f"{path}: not a readable DescriptiveEdit checkpoint ({type(e).__name__}: {e}); delete it "
                         "(or use a fresh out folder) and train again") from None
    return tensors, meta


def _restore(tensors: dict, meta: dict, method, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
    method.bridges.load_state_dict({k[len("bridges."):]: v for k, v in tensors.items() if k.startswith("bridges.")})
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for idx, d in meta.get("optim_scalars", {}).items():
        state.setdefault(int(idx), {}).update(d)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optim_param_groups"]})
    generator.set_state(tensors["generator"])


def train_descriptive(folder_models, data_source: Iterable, out: str | Path, steps: int,
                      train_config: DescriptiveTrainConfig | None = None, config=None, init: str | Path | None = None,
                      export: str | Path | None = None, minutes: float | None = None, data_name: str = "caller's data source",
                      verbose: bool = False, export_dtype: torch.dtype = torch.float32) -> dict:
    """Train (or resume training) DescriptiveEdit bridges until ``steps`` steps in all (or ``minutes`` of this call).

    folder_models: the base model folder / name (:func:`regionedit.models.load`) or a loaded ``Models``.
    data_source: iterable of samples with ``.source``, ``.target`` ((H, W, 3) uint8) and ``.target_caption`` (str).
    out: run folder (``state.safetensors``, ``log.jsonl``); an existing run there is resumed (its method config and
        base model are used; a different ``config`` is an error).
    train_config: :class:`DescriptiveTrainConfig` (a resumed run keeps its own).
    config: :class:`regionedit.methods.DescriptiveEditConfig` of a new run (default: the method's default).
    init: a DescriptiveEdit folder (:meth:`save_pretrained`) whose bridges a new run starts from.
    export: where the trained bridges go (default ``<out>/export``); export_dtype: their dtype there (float16 for a
        bundle).
    Returns ``{"step", "losses" (this call's, one per step), "export", "resumed_from"}``.
    """
    from regionedit.methods.descriptive_edit import DescriptiveEdit, DescriptiveEditConfig

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state_path, log_path = out / STATE_NAME, out / "log.jsonl"
    resumed_from = None
    tensors: dict = {}
    if state_path.exists():
        tensors, meta = _load_state(state_path)
        saved_cfg = DescriptiveEditConfig.from_dict(meta["method_config"])
        if config is not None and config.to_dict() != saved_cfg.to_dict():
            raise ValueError(f"{out} holds a run with another DescriptiveEditConfig ({saved_cfg}); resume without config= "
                             "or use a fresh out folder")
        config, tcfg = saved_cfg, DescriptiveTrainConfig(**meta["train_config"])
        resumed_from = int(meta["step"])
    else:
        meta = {}
        tcfg = train_config or DescriptiveTrainConfig()
    if isinstance(folder_models, (str, Path)):
        from regionedit.models import load

        folder_models = load(folder_models)
    if init is not None and not tensors:
        method = DescriptiveEdit.from_pretrained(init, models=folder_models)
    else:
        method = DescriptiveEdit(folder_models, config or DescriptiveEditConfig())
    if meta and meta.get("base_model") != method.base_model:
        raise ValueError(f"{out} was trained on base model {meta.get('base_model')!r}, not {method.base_model!r}; pass "
                         "that base model or use a fresh out folder")
    params = method.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    gen = torch.Generator().manual_seed(tcfg.seed)
    step, seconds = 0, 0.0
    if tensors:
        _restore(tensors, meta, method, optimizer, gen)
        step, seconds = int(meta["step"]), float(meta["seconds"])
        truncate_jsonl(log_path, step)
    elif log_path.exists():
        log_path.unlink()  # a log without a checkpoint belongs to a run that never checkpointed
    stream = SampleStream(data_source, skip=step * tcfg.batch_size)
    scheduler = method.models.scheduler
    null_emb = method.encode_text([method.config.null_text])
    method.bridges.train()

    def checkpoint():
        _save_state(state_path, method, optimizer, gen,
                    {"step": step, "seconds": seconds, "base_model": method.base_model,
                     "method_config": method.config.to_dict(), "train_config": dataclasses.asdict(tcfg)})
        if log_path.exists():  # the loss curves beside the log
            from regionedit.training.curves import plot_losses

            plot_losses(log_path)

    losses: list[float] = []
    start = time.time()
    while step < steps and (minutes is None or time.time() - start < minutes * 60):
        t0 = time.time()
        src, tgt, emb = prepare_batch(method, stream.take(tcfg.batch_size))
        loss = descriptive_loss(method, src, tgt, emb, null_emb, scheduler, gen, tcfg.p_drop_text, tcfg.p_drop_image)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        seconds += time.time() - t0
        losses.append(float(loss.detach()))
        with open(log_path, "a") as f:
            f.write(json.dumps({"step": step, "loss": losses[-1], "minutes": round(seconds / 60, 3)}) + "\n")
        if verbose:
            print(json.dumps({"step": step, "loss": round(losses[-1], 5)}), flush=True)
        if step % tcfg.checkpoint_steps == 0:
            checkpoint()
    checkpoint()
    method.bridges.eval()
    folder = Path(export) if export is not None else out / "export"
    tail = losses[-20:]
    record = {"steps": step, "batch_size": tcfg.batch_size, "lr": tcfg.lr, "samples_seen": step * tcfg.batch_size,
              "cpu_minutes": round(seconds / 60, 2), "data": data_name,
              "final_loss_mean_of_last_steps": round(sum(tail) / len(tail), 5) if tail else None,
              "objective": "seed 004 latent-diffusion loss, noise on the target only (s = 0), 5% text / image drops"}
    method.save_pretrained(folder, training=record, dtype=export_dtype)
    return {"step": step, "losses": losses, "export": folder, "resumed_from": resumed_from, "method": method}

