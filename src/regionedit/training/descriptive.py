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

Resumable through the seed methods' shared runner (:func:`regionedit.training.method_runner.train_method`, as
AdaptEdit's, FireEdit's and Region in Context's): ``<out>/state.pt`` (bridge weights, AdamW state, generator, step,
data position, settings; loaded with ``weights_only=True``: nothing but tensors and plain data is unpickled),
``<out>/log.jsonl`` one line per step, ``loss.png``; the bridges are exported to ``<out>/export``
(:meth:`DescriptiveEdit.save_pretrained`: ``bridges.safetensors`` + ``config.json`` + model card).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F

from regionedit.training.method_runner import Trainee


@dataclasses.dataclass
class DescriptiveTrainConfig:
    """Trainer settings (saved with the run).

    batch_size: triples per step. lr / weight_decay: AdamW on the bridge parameters only.
    p_drop_text / p_drop_image: the seed's 5 % independent drops of the description and of the source image.
    seed: the generator of timesteps, noise and drops. (How often to checkpoint is :func:`train_descriptive`'s.)
    """

    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 1e-2
    p_drop_text: float = 0.05
    p_drop_image: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
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


class DescriptiveTrainee(Trainee):
    """A :class:`~regionedit.methods.DescriptiveEdit` as :func:`~regionedit.training.method_runner.train_method` trains
    it: ``net`` (the bridges), :meth:`collate` (samples -> source / target latents and description embeddings),
    :meth:`training_loss` (:func:`descriptive_loss`); ``losses`` keeps this call's per-step losses."""

    def __init__(self, method):
        super().__init__(method, method.bridges, method.native_size)
        self.null_emb = method.encode_text([method.config.null_text])
        self.losses: list[float] = []

    def collate(self, samples: list) -> tuple:
        return prepare_batch(self.method, samples)

    def training_loss(self, source_latents, target_latents, text_emb, generator, p_drop_text: float = 0.05,
                      p_drop_image: float = 0.05):
        loss = descriptive_loss(self.method, source_latents, target_latents, text_emb, self.null_emb,
                                self.method.models.scheduler, generator, p_drop_text, p_drop_image)
        self.losses.append(float(loss.detach()))
        return loss, {"loss": self.losses[-1]}

    def training_record(self) -> dict:
        tail = self.losses[-20:]
        return {"final_loss_mean_of_last_steps": round(sum(tail) / len(tail), 5) if tail else None}


def train_descriptive(folder_models, data_source: Iterable, out: str | Path, steps: int,
                      train_config: DescriptiveTrainConfig | None = None, config=None, init: str | Path | None = None,
                      export: str | Path | None = None, minutes: float | None = None,
                      data_name: str = "caller's data source", export_dtype: torch.dtype = torch.float32,
                      checkpoint_steps: int | None = None, checkpoint_minutes: float = 3.0,
                      progress: bool = False) -> dict:
    """Train (or resume training) DescriptiveEdit bridges until ``steps`` steps in all (or ``minutes`` of this call).

    folder_models: the base model folder / name (:func:`regionedit.models.load`) or a loaded ``Models``.
    data_source: iterable of samples with ``.source``, ``.target`` ((H, W, 3) uint8) and ``.target_caption`` (str).
    out: run folder (``state.pt``, ``log.jsonl``); an existing run there is resumed (its method config, train config
        and base model are used; a different ``config`` or base model is an error).
    train_config: :class:`DescriptiveTrainConfig` (a resumed run keeps its own).
    config: :class:`regionedit.methods.DescriptiveEditConfig` of a new run (default: the method's default).
    init: a DescriptiveEdit folder (:meth:`save_pretrained`) whose bridges a new run starts from.
    export: where the trained bridges go (default ``<out>/export``); export_dtype: their dtype there (float16 for a
        bundle). checkpoint_steps / checkpoint_minutes: checkpoint at least this often; progress: a tqdm bar.
    Returns ``{"step", "losses" (this call's, one per step), "export", "resumed_from", "method"}``.
    """
    from regionedit.methods.descriptive_edit import DescriptiveEdit, DescriptiveEditConfig
    from regionedit.training.method_runner import RunOptions, train_method

    out = Path(out)
    if isinstance(folder_models, (str, Path)):
        from regionedit.models import load

        folder_models = load(folder_models)
    base = str(getattr(folder_models, "model_id", "unknown"))
    resumed = {}

    def check_resume(saved: dict) -> None:
        resumed["step"] = int(saved["step"])
        saved_cfg = DescriptiveEditConfig.from_dict(saved["method_config"])
        if config is not None and config.to_dict() != saved_cfg.to_dict():
            raise ValueError(f"{out} holds a run with another DescriptiveEditConfig ({saved_cfg}); resume without config= "
                             "or use a fresh out folder")
        saved_base = (saved.get("run_info") or {}).get("base_model", base)
        if saved_base != base:
            raise ValueError(f"{out} was trained on base model {saved_base!r}, not {base!r}; pass that base model or "
                             "use a fresh out folder")

    def make(cfg) -> DescriptiveTrainee:
        if init is not None and "step" not in resumed:  # a new run starting from trained bridges
            return DescriptiveTrainee(DescriptiveEdit.from_pretrained(init, models=folder_models))
        return DescriptiveTrainee(DescriptiveEdit(folder_models, cfg))

    opts = RunOptions(out=out, max_steps=steps, minutes=float("inf") if minutes is None else minutes, export=export,
                      checkpoint_minutes=checkpoint_minutes, checkpoint_steps=checkpoint_steps, data_name=data_name,
                      progress=progress, log_every=1, export_dtype=export_dtype)
    objective = "seed 004 latent-diffusion loss, noise on the target only (s = 0), 5% text / image drops"
    res = train_method(make, DescriptiveEditConfig, config or DescriptiveEditConfig(),
                       train_config or DescriptiveTrainConfig(), data_source, opts, objective,
                       loss_kwargs=lambda t: {"p_drop_text": t.p_drop_text, "p_drop_image": t.p_drop_image},
                       grad_clip=None, run_info={"base_model": base}, check_resume=check_resume)
    trainee = res["method"]
    return {"step": res["step"], "losses": trainee.losses, "export": res["export"], "resumed_from": resumed.get("step"),
            "method": trainee.method}
