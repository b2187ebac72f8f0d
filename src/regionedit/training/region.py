"""``regionedit train region``: train the seed-001 region predictor on text-image pairs (and edit pairs).

Captions: each step takes (image, caption) pairs with an instruction and the target description written from the
*caption text alone* (the paper uses an LLM; a data source supplies them, see :class:`RegionData`), predicts a
region, fills it with the frozen inpainting generator, blends with a differentiable soft mask and minimises

    L = alpha * L_semAlign (eqs 4-6) + beta * (l_g L_CLIPg + l_d L_CLIPd + l_s L_CLIPs + l_c L_CLIPc)
        + gamma * mean(region)  (keeps regions tight)

(eqs 7-10; ``L_CLIPc``, our addition, is eq. 7 in CLIP's contrastive form: the composite must match the
target better than the captions a wrong region would produce). Edit pairs (``--data`` with an instruction and a
target image or mask) add ``lambda_m * region_loss`` against the true region (the mask, or |target - source|),
see :mod:`regionedit.training.data_sources`.

Data: the trainer takes a :class:`RegionDataFactory` (``run(args, data=...)``); this module imports no
world. ``--data PATH_OR_ID`` reads any dataset :func:`regionedit.data.open_dataset` reads
(:class:`regionedit.training.data_sources.DatasetRegionData`). Otherwise ``regionedit train region`` passes the
bundled shapes world's (:class:`regionedit.world.training.region_data.WorldRegionData`): with ``--pairs DIR`` it
streams the WebDataset shards written by ``regionedit world make --format pairs``; without it, pairs are
rendered on the fly by the same code (image and caption only; the scene graph is discarded before training
sees the sample). Several processes: ``accelerate launch`` / ``torchrun`` (:mod:`regionedit.training.distributed`;
docs/training.md). Resumable (weights, optimizer, every rank's generator and data position): checkpoints in
``--out``; the trained predictor is exported to ``<export>/region_predictor`` (config.json + fp16 safetensors,
training_state.json and a model card; ``--export`` defaults to ``<out>/export``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import torch
from regionedit.training.common import add_checkpoint_arguments, add_export_arguments, truncate_jsonl
from regionedit.training.region_records import _tensorboard, write_model_card


# --------------------------------------------------------------------------------------------------
# the data interface: what a data source hands the trainer


@dataclasses.dataclass
class RegionExample:
    """One training edit, written from a pair's caption text alone (never from the image or a scene graph).

    Attributes:
        instruction: the edit instruction (``"remove the red circle"``), read by the predictor.
        target: the target description ``t_e`` (the caption of the edited image), for ``L_semAlign``.
        local: the generator's prompt inside the region (``"a blue star"``, ``"background"``).
        clip_target: the text the composite is scored against by the CLIP losses: for an edit of an existing
            object, the caption *without* that object (the region is the object's footprint: the region that,
            once refilled with background, makes the object disappear); for additions and background edits
            ``target``; for an absent referent the source caption itself (nothing should change).
        negatives: captions a wrong region would produce (another object edited, nothing changed...), scored
            against in the contrastive CLIP loss; may be empty.
        source: the pair's caption (the source description).
        referent: True when the instruction edits an object the caption has; False when it names an object the
            caption lacks (nothing should change: the presence head's label 0, no directional CLIP loss);
            None when there is no referent to look for (additions, background edits).
        proxy_fill: what the ``proxy`` fill (:class:`RegionTrainConfig`) blends into the region: ``"estimate"``
            (the classical :func:`background_estimate` of the frame: the object removed), ``"generate"`` (the
            frozen generator fills the hard region with ``local``), or a (3, H, W) float32 tensor in [-1, 1]
            (a whole frame the text alone determines, e.g. the requested new background).
        op: the data source's own name of the edit kind, for inspection only (the trainer never reads it).
        mask: the true region of an edit pair, (1, H, W) float32 in {0, 1} (1 = edit), supervised directly
            (:func:`regionedit.training.data_sources.region_loss`, weight ``lambda_m``); None for caption edits.
    """

    instruction: str
    target: str
    local: str
    clip_target: str
    negatives: list[str]
    source: str
    referent: bool | None
    proxy_fill: str | torch.Tensor = "estimate"
    op: str = ""
    mask: torch.Tensor | None = None


class RegionBatch(NamedTuple):
    """``images``: (B, 3, H, W) float32 in [-1, 1], RGB, row 0 at the top (the frozen models' size, e.g. 64);
    ``examples``: B :class:`RegionExample`, one per image, in the same order."""

    images: torch.Tensor
    examples: list[RegionExample]


class RegionData(Protocol):
    """A data source: ``data(n)`` returns the next :class:`RegionBatch` of ``n`` pairs (forever).

    Optional: ``state_dict()`` / ``load_state_dict(state)`` (JSON-able: its position, so a resumed run reads what
    the uninterrupted run would have), ``last_ids`` (ids of the last batch's samples, for ``--sample-log``) and
    ``describe()`` (a JSON-able record of the data, for the model card)."""

    def __call__(self, n: int) -> RegionBatch: ...


class RegionDataFactory(Protocol):
    """Makes the :class:`RegionData` of a run from the command line's data options: ``pairs`` (a folder of
    pairs on disk, or None for the source's own), ``seed`` (the same seed must give the same batches),
    ``absent_prob`` (share of examples naming an object the caption lacks) and ``degrade`` (share of images
    passed through a JPEG or noise). A class whose ``__init__`` takes these keywords is one. For several
    processes it also takes ``rank`` and ``world_size`` and gives each rank a disjoint share of the data."""

    def __call__(self, *, pairs: Path | None, seed: int, absent_prob: float, degrade: float) -> RegionData: ...


def caption_pairs(folder: Path, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, str]]:
    """Yields ``(image, caption)`` forever from a dataset on disk (:func:`regionedit.data.load_dataset`: the
    records' ``source`` image, (H, W, 3) uint8 RGB 0..255, and ``source_caption``), each epoch in a random
    order drawn from ``rng``."""
    from regionedit.data import load_dataset

    ds = load_dataset(folder)
    while True:
        for i in rng.permutation(len(ds)):
            r = ds[int(i)]
            yield r["source"], r["source_caption"]


# --------------------------------------------------------------------------------------------------
# the trainer


def background_estimate(x: torch.Tensor) -> torch.Tensor:
    """A classical, non-learned fill: each row replaced by its median colour.

    (B, 3, H, W) float in [-1, 1] -> same shape and dtype. World backgrounds are top-to-bottom gradients and objects
    cover a minority of each row, so this is the image with its objects removed; it reads only pixels.
    Used by the ``proxy`` fill of training (see :class:`RegionTrainConfig`), never at inference.
    """
    return x.median(dim=-1, keepdim=True).values.expand_as(x)


@dataclasses.dataclass
class RegionTrainConfig:
    alpha: float = 1.0  # weight of L_semAlign
    beta: float = 1.0  # weight of L_CLIP
    lambda_g: float = 1.0  # CLIP guidance (eq. 7)
    lambda_d: float = 1.0  # directional CLIP (eq. 8)
    lambda_s: float = 1.0  # structural (eq. 9)
    lambda_c: float = 1.0  # contrastive CLIP: the composite must match clip_target better than the negatives
    lambda_p: float = 1.0  # presence head: BCE on "does the referent exist", a label the caption text implies
    lambda_m: float = 1.0  # edit pairs: direct region supervision (BCE + Dice) by the mask or |target - source|
    absent_prob: float = 0.1  # share of examples naming an object the caption lacks
    degrade: float = 0.0  # share of training images passed through a JPEG or noise (by the data source)
    gamma: float = 0.2  # region area penalty
    gen_steps: int = 6  # DDIM steps of the frozen generator during training
    guidance: float = 4.0
    lr: float = 3e-4
    # What the soft composite blends in (eq. 10's "generated" image):
    #  "generator": the frozen inpainting generator fills the hard predicted region with the local prompt
    #               (the paper's recipe; use it with a real inpainting model);
    #  "proxy":     edits of an existing object blend in a classical background estimate of the whole
    #               frame (:func:`background_estimate`) and are scored against the caption without the
    #               object, background edits blend in the requested background drawn from its colour names,
    #               and only "add" edits call the generator. Every pixel then has a candidate, so the CLIP
    #               losses can grow the region anywhere (with "generator", nothing outside the current hard
    #               region can change, which stalls training from scratch), and a weak miniature generator
    #               does not corrupt the signal. Text-image pairs only, as before.
    fill: str = "proxy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="shapes-64", help="frozen models (bundled name, folder or hub id)")
    p.add_argument("--data", default=None, metavar="PATH_OR_ID",
                   help="train on this dataset (regionedit.data.open_dataset: a datasets save_to_disk folder or hub id, "
                        "parquet files, WebDataset .tar shards, imagefolder + metadata.jsonl, images with .txt captions; "
                        "MagicBrush / InstructPix2Pix / Emu Edit columns or image + caption). Captions train with the "
                        "seed-001 losses, edit pairs also supervise the region (mask or |target - source|). Default: "
                        "the data source the app passes (regionedit train region: the shapes world)")
    p.add_argument("--split", default=None, help="split of --data (train, dev, test...; default: all / train)")
    p.add_argument("--schema", default=None, help="force --data's column schema (magicbrush, instructpix2pix, emu, "
                                                  "edits, pairs; default: detected)")
    p.add_argument("--columns", default=None, metavar="FIELD=COL,...",
                   help="map --data's columns to sample fields (image, caption, instruction, target, target_caption, "
                        "mask, id), e.g. image=photo,caption=alt_text")
    p.add_argument("--image-size", type=int, default=None,
                   help="centre-crop and resize every --data image to this side (default: keep; mixed sizes are then "
                        "an error)")
    p.add_argument("--mask-threshold", type=int, default=32,
                   help="edit pairs without a mask: the region is max over RGB of |target - source| > this (0..255)")
    p.add_argument("--shuffle-buffer", type=int, default=500, help="samples in --data's shuffle buffer")
    p.add_argument("--pairs", type=Path, default=None, help="WebDataset pair shards (default: render pairs on the fly)")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log)")
    add_export_arguments(p, "the model folder region_predictor/ is written into; without a checkpoint, training "
                            "continues from the predictor there, else from --model's")
    p.add_argument("--minutes", type=float, default=30.0)
    add_checkpoint_arguments(p)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=16, help="samples per step per process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per process (default: the CPU count divided by the processes on this machine)")
    p.add_argument("--mixed-precision", default=None, choices=["no", "fp16", "bf16"],
                   help="autocast of the trained predictor under accelerate (default: accelerate launch's "
                        "--mixed_precision, else no = fp32; fp16 needs CUDA; bf16 on CPU is far slower than fp32)")
    p.add_argument("--log-every", type=int, default=5, help="steps per record of <out>/region/log.jsonl")
    p.add_argument("--sample-log", action="store_true",
                   help="record the ids of every step's samples per rank in <out>/region/samples-rank<R>.jsonl")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm progress bar")
    p.add_argument("--eval-data", default=None, metavar="PATH_OR_ID",
                   help="held-out data whose measured quality goes into the model card (default: --data's --eval-split, "
                        "else fresh samples of the data source, or --data's own samples, marked as not held out)")
    p.add_argument("--eval-split", default=None, help="split of --data (or --eval-data) to measure on")
    p.add_argument("--eval-n", type=int, default=32, help="samples measured for the model card (0: none)")
    p.add_argument("--no-clip-text", dest="clip_text", action="store_false",
                   help="a new predictor reads only the instruction encoder (default: also CLIP's text tokens)")
    p.add_argument("--presence", action="store_true",
                   help="give the predictor a presence head (added to a shipped predictor that lacks one) and train it")
    p.add_argument("--presence-only", action="store_true",
                   help="train only the presence head (implies --presence), the rest of the predictor frozen: the "
                        "regions stay exactly as shipped and a step skips the generator and the CLIP losses")
    for f in dataclasses.fields(RegionTrainConfig):
        extra = {"choices": ["proxy", "generator"]} if f.name == "fill" else {}
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default, **extra)


def parse_columns(text: str | None) -> dict[str, str] | None:
    """``"image=photo,caption=alt"`` -> ``{"image": "photo", "caption": "alt"}``."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise SystemExit(f"--columns {text!r}: expected FIELD=COLUMN pairs separated by commas, e.g. image=photo,caption=alt")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def dataset_data(args, captions=None):
    """The :class:`RegionDataFactory` of ``--data`` (:class:`regionedit.training.data_sources.DatasetRegionData`),
    edits of captions written by ``captions`` (default: the generic English rules)."""
    from regionedit.training.data_sources import dataset_factory

    return dataset_factory(args.data, split=args.split, schema=args.schema, columns=parse_columns(args.columns),
                           captions=captions, image_size=args.image_size, mask_threshold=args.mask_threshold,
                           shuffle_buffer=args.shuffle_buffer)


def _accepts(factory, name: str) -> bool:
    import inspect

    if getattr(factory, "accepts_rank", False):
        return True
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


class RegionTrainable(torch.nn.Module):
    """What the optimizer trains: the predictor and the semantic-alignment head, in one forward (so DDP sees every
    trained parameter used through its wrapper). State-dict keys ``pred.*`` / ``sem.*``, as before."""

    def __init__(self, pred, sem):
        super().__init__()
        self.pred = pred
        self.sem = sem

    def forward(self, f_img, pixels=None, with_sem: bool = True, **ins_in):
        out = dict(self.pred(f_img, pixels=pixels, **ins_in))
        if with_sem:
            out["sem_edited"] = self.sem(out["f_edited"])
            out["sem_img"] = self.sem(self.pred.proj_img(f_img))
        return out


def command_line(args) -> str:
    """The ``regionedit train region`` command of ``args`` (options that differ from the defaults)."""
    import shlex

    defaults = vars(build_parser().parse_args(["--out", "x"]))
    parts = ["regionedit", "train", "region"]
    for k, v in vars(args).items():
        if k in ("func", "command", "train_command", "verbose") or k not in defaults or (v == defaults[k] and k != "out"):
            continue
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            neg = {"clip_text": "--no-clip-text", "progress": "--no-progress"}
            parts.append(neg.get(k, flag))
        else:
            parts += [flag, shlex.quote(str(v))]
    return " ".join(parts)


def run(args, data: RegionDataFactory | None = None) -> int:
    """Train (or resume) as ``args`` (see :func:`add_arguments`) says, on the batches of ``data`` (built with
    ``pairs=args.pairs``, ``seed=args.seed``, the config's ``absent_prob`` / ``degrade``, and ``rank`` /
    ``world_size`` when several processes run), and export the predictor with its model card. Without ``data``,
    ``--data`` is required (captions then get the generic English edit rules). Several processes: launched by
    ``accelerate launch`` / ``torchrun`` (:mod:`regionedit.training.distributed`)."""
    if data is None and getattr(args, "data", None):
        data = dataset_data(args)
    if data is None:
        raise SystemExit("the region trainer needs a data source (run(args, data=...)): use `regionedit train region`, "
                         "which passes the bundled shapes world's (regionedit.world.training.region_data.WorldRegionData), "
                         "or give --data PATH_OR_ID")
    import os

    from regionedit import models as M
    from regionedit.generate import InpaintConfig, InpaintGenerator
    from regionedit.localize import RegionPredictor, RegionPredictorConfig, SemanticAlignment
    from regionedit.localize import losses as L
    from regionedit.localize.features import clip_pixels, image_features, instruction_inputs, text_embeddings
    from regionedit.localize import load_region_predictor, save_region_predictor
    from regionedit.training.common import Run, earlier_record, resolve_export, train_loop
    from regionedit.training.data_sources import region_loss
    from regionedit.training.distributed import Dist, exit_worker

    dist = Dist.create(getattr(args, "mixed_precision", None))
    threads = args.threads or max(1, (os.cpu_count() or 2) // dist.local_world_size)
    torch.set_num_threads(threads)
    args.presence = args.presence or args.presence_only
    cfg = RegionTrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RegionTrainConfig)})
    m = M.load(args.model)
    export = resolve_export(args.out, args.export, getattr(args, "overwrite_bundled", False))
    clip, proc = m.clip, m.clip_processor
    size = proc.crop_size["height"]
    d_img = clip.config.projection_dim
    d_ins = m.instruction_encoder.config.d_model
    pcfg = RegionPredictorConfig(image_dim=d_img, instruction_dim=d_ins, clip_dim=d_img,
                                 text_dim=clip.config.text_config.hidden_size if args.clip_text else 0,
                                 presence=args.presence)
    folder = export / "region_predictor"
    if not (folder / "config.json").exists() and (Path(m.location) / "region_predictor" / "config.json").exists():
        folder_in = Path(m.location) / "region_predictor"  # continue from the model's predictor (read, never written)
    else:
        folder_in = folder
    run_ = Run.for_args(args.out / "region", args)
    # the record of the predictor this run continues from, minus its presence head (kept in the run state
    # across resumes): the card lists it under "earlier training", or, for --presence-only, as the regions' own
    earlier = earlier_record(run_, folder_in, drop=("presence_head",))  # a new head is trained after (--presence-only)
    saved_state = run_.load() if run_.exists() else None
    if saved_state is not None:  # resume: the predictor's architecture is the checkpoint's
        saved = saved_state.get("predictor_config")
        pred = RegionPredictor(RegionPredictorConfig.from_dict(saved) if saved else dataclasses.replace(pcfg, text_dim=0))
    elif (folder_in / "config.json").exists():  # continue from the shipped (or exported) predictor
        pred = load_region_predictor(folder_in).train()
        if args.presence and not pred.config.presence:  # same weights, plus a new presence head
            new = RegionPredictor(dataclasses.replace(pred.config, presence=True))
            missing, unexpected = new.load_state_dict(pred.state_dict(), strict=False)
            assert all(k.startswith("presence_head.") for k in missing) and not unexpected, (missing, unexpected)
            pred = new.train()
    else:
        pred = RegionPredictor(pcfg)
    sem = SemanticAlignment(pred.config.dim, d_img)
    params = RegionTrainable(pred, sem)
    if args.presence_only:
        for n, q in params.named_parameters():
            q.requires_grad_(n.startswith("pred.presence_head."))
    opt = torch.optim.AdamW(params.parameters(), lr=cfg.lr, weight_decay=0.01)
    model, opt_run = dist.prepare(params, opt)
    gen = InpaintGenerator(m, InpaintConfig(steps=cfg.gen_steps, guidance=cfg.guidance))
    data_kw = dict(pairs=args.pairs, seed=args.seed, absent_prob=cfg.absent_prob, degrade=cfg.degrade)
    if _accepts(data, "rank"):
        data_kw.update(rank=dist.rank, world_size=dist.world_size)
    elif dist.world_size > 1:
        raise SystemExit(f"{dist.world_size} processes, but the data source {data!r} takes no rank / world_size: every "
                         "process would read the same samples. Give it rank and world_size keywords, or run one process")
    source = data(**data_kw)
    args.out.mkdir(parents=True, exist_ok=True)
    if dist.is_main:
        (args.out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items() if k != "func"}, indent=2))

    seen = {"samples": int(saved_state.get("samples_seen", saved_state["step"] * args.batch)) if saved_state else 0}
    sample_log = run_.dir / f"samples-rank{dist.rank}.jsonl" if getattr(args, "sample_log", False) else None
    if sample_log is not None:
        truncate_jsonl(sample_log, saved_state["step"] if saved_state else 0)

    def fill(x, region, exs, g):
        """The image blended into the composite, (B, 3, H, W), no gradient (see RegionTrainConfig.fill)."""
        if cfg.fill == "generator":
            return gen(x, (region > 0.5).float(), [e.local for e in exs], generator=g)
        out = background_estimate(x).clone()
        for i, e in enumerate(exs):
            if isinstance(e.proxy_fill, torch.Tensor):
                out[i] = e.proxy_fill
        add = [i for i, e in enumerate(exs) if isinstance(e.proxy_fill, str) and e.proxy_fill == "generate"]
        if add:
            out[add] = gen(x[add], (region[add] > 0.5).float(), [exs[i].local for i in add], generator=g)
        return out

    def contrastive(e_res, t_pos, negatives):
        """L_CLIPc of each sample against its own negative captions (see losses.clip_contrastive_loss)."""
        k = max(len(n) for n in negatives)
        if k == 0:
            return e_res.sum() * 0
        with torch.no_grad():
            t_neg_flat = text_embeddings(clip, m.clip_tokenizer, [t for n in negatives for t in n])
        t_neg = torch.zeros(len(negatives), k, t_pos.shape[-1])
        valid = torch.zeros(len(negatives), k, dtype=torch.bool)
        i0 = 0
        for i, n in enumerate(negatives):
            t_neg[i, :len(n)] = t_neg_flat[i0:i0 + len(n)]
            valid[i, :len(n)] = True
            i0 += len(n)
        return L.clip_contrastive_loss(e_res, t_pos, t_neg, valid, clip.logit_scale.exp().detach())

    def presence_terms(out, exs):
        """``(presence BCE or None, logs)`` over the referent edits of a batch (present or absent; add /
        background edits have no referent to look for)."""
        ref = torch.tensor([e.referent is not None for e in exs])
        if "presence_logit" not in out or not ref.any():
            return None, {}
        logit = out["presence_logit"][ref]
        present = torch.tensor([e.referent is not False for e in exs])[ref]
        l_p = L.presence_loss(logit, present.float())
        return l_p, {"presence": l_p.item(), "presence_acc": ((logit > 0) == present).float().mean().item()}

    def presence_step(x, exs, train=True, net=None):
        """``--presence-only``: the presence BCE, nothing else (no generator, no CLIP losses)."""
        with torch.no_grad():
            f_img, _ = image_features(clip, clip_pixels(x, size, proc.image_mean, proc.image_std))
            ins_in = instruction_inputs(m, pred, [e.instruction for e in exs])
        out = (net or model)(f_img, with_sem=False, **ins_in)
        l_p, logs = presence_terms(out, exs)
        if l_p is None:  # no referent edit in this batch: nothing to learn from
            if train and dist.world_size > 1:  # every rank must take part in DDP's gradient averaging
                dist.backward(out["region_logits"].sum() * 0)
            return {"loss": 0.0}
        if train:
            dist.backward(l_p)
        return {"loss": l_p.item(), **logs}

    def losses(x, exs, g, train=True, net=None):
        """The seed-001 loss of a batch (plus the region loss of edit pairs); backward when ``train``. ``net``: the
        module to call (default the training one, DDP-wrapped under several processes; rank 0's measurement passes
        the plain module, as a DDP forward on one rank alone would wait for the others)."""
        if args.presence_only:
            return presence_step(x, exs, train, net)
        ins, tgt = [e.instruction for e in exs], [e.target for e in exs]
        with torch.no_grad():
            f_img, e_src = image_features(clip, clip_pixels(x, size, proc.image_mean, proc.image_std))
            ins_in = instruction_inputs(m, pred, ins)
            t_tgt = text_embeddings(clip, m.clip_tokenizer, tgt)
            t_clip = text_embeddings(clip, m.clip_tokenizer, [e.clip_target for e in exs])
            t_src = text_embeddings(clip, m.clip_tokenizer, [e.source for e in exs])
        out = (net or model)(f_img, pixels=x, **ins_in)
        region = out["region"]  # (B, 1, H, W)
        with torch.no_grad():
            generated = fill(x, region, exs, g)
        res = L.soft_composite(x, generated, region)
        f_res, e_res = image_features(clip, clip_pixels(res, size, proc.image_mean, proc.image_std))
        l_sem = L.semantic_alignment_loss(out["sem_edited"], t_tgt, out["sem_img"], t_src)
        l_g = L.clip_global_loss(e_res, t_clip)
        changed = torch.tensor([e.referent is not False for e in exs])  # eq. 8 needs a text direction
        l_d = L.clip_directional_loss(e_res[changed], e_src[changed], t_clip[changed], t_src[changed]) if changed.any() else e_res.sum() * 0
        l_s = L.clip_structural_loss(f_img, f_res)
        area = L.region_area_loss(region)
        l_c = contrastive(e_res, t_clip, [e.negatives for e in exs])
        loss = cfg.alpha * l_sem + cfg.beta * (cfg.lambda_g * l_g + cfg.lambda_d * l_d + cfg.lambda_s * l_s + cfg.lambda_c * l_c) + cfg.gamma * area
        l_p, logs = presence_terms(out, exs)
        if l_p is not None:
            loss = loss + cfg.lambda_p * l_p
        supervised = [i for i, e in enumerate(exs) if e.mask is not None]
        if supervised:
            truth = torch.stack([exs[i].mask for i in supervised])
            l_m = region_loss(out["region_logits"][supervised], truth)
            loss = loss + cfg.lambda_m * l_m
            logs["region"] = l_m.item()
            with torch.no_grad():
                hard = region[supervised] > 0.5
                inter = (hard & (truth > 0.5)).flatten(1).sum(-1).float()
                union = (hard | (truth > 0.5)).flatten(1).sum(-1).float()
                logs["region_iou"] = (inter / union.clamp(min=1)).mean().item()
        if train:
            dist.backward(loss)
        return {"loss": loss.item(), "sem": l_sem.item(), "clip_g": l_g.item(), "clip_d": l_d.item(),
                "clip_s": l_s.item(), "clip_c": l_c.item(), "area": area.item(), **logs}

    def step_fn(step, g):
        x, exs = source(args.batch)
        if sample_log is not None:
            with open(sample_log, "a") as f:
                f.write(json.dumps({"step": step + 1, "rank": dist.rank, "ids": list(getattr(source, "last_ids", []))}) + "\n")
        seen["samples"] += args.batch * dist.world_size
        return losses(x, exs, g)

    data_state = None
    if hasattr(source, "state_dict") and hasattr(source, "load_state_dict"):
        data_state = (source.state_dict, source.load_state_dict)
    tb = _tensorboard(run_.dir) if dist.is_main else None
    res = train_loop(run_, params, opt_run, step_fn, args.minutes, args.max_steps, args.seed,
                     log_every=getattr(args, "log_every", 5), dist=dist, data_state=data_state,
                     samples_per_step=args.batch, progress=getattr(args, "progress", False),
                     on_log=(lambda rec: [tb.add_scalar(k, v, rec["step"]) for k, v in rec.items()
                                          if k != "step" and isinstance(v, (int, float))]) if tb else None,
                     extra_state=lambda: {"predictor_config": dataclasses.asdict(pred.config), "earlier_training": earlier,
                                          "samples_seen": seen["samples"]})
    if tb is not None:
        tb.close()
    if dist.is_main:
        described = source.describe() if hasattr(source, "describe") else {"source": type(source).__name__,
                                                                           "pairs": str(args.pairs) if args.pairs else None}
        quality = {}
        if getattr(args, "eval_n", 0) > 0:
            quality = _measure(args, data, data_kw, losses, params, res["step"])
        state = {"steps": res["step"], "cpu_minutes": round(res["seconds"] / 60, 1), "seed": args.seed, "batch": args.batch,
                 "processes": dist.world_size, "samples_seen": seen["samples"], "data": described,
                 "train_config": dataclasses.asdict(cfg), "command": command_line(args), "quality": quality}
        if args.presence_only:  # the regions are the earlier training's: keep its record, add the head's
            state = {**(earlier or {}), "presence_head": {k: v for k, v in state.items() if k != "seed"}}
        elif earlier is not None:
            state["earlier_training"] = earlier
        save_region_predictor(pred, folder, state)
        write_model_card(folder, state["presence_head"] if args.presence_only else state, earlier)
    dist.end()
    if dist.world_size > 1:
        exit_worker()
    return 0



def _measure(args, data, data_kw, losses, params, steps: int) -> dict:
    """The trained predictor's quality for its card, on ``--eval-n`` samples: the mean seed-001 loss terms (no
    gradient) and, for edit pairs, the hard region's IoU (threshold 0.5) with the true region, beside the IoU of
    the whole image as region (what an edit that ignores the instruction would score)."""
    n = int(args.eval_n)
    seed = args.seed + 100003
    if getattr(args, "eval_data", None) or (getattr(args, "eval_split", None) and args.data):
        from regionedit.training.data_sources import dataset_factory

        where = args.eval_data or args.data
        factory = dataset_factory(where, split=args.eval_split, schema=args.schema, columns=parse_columns(args.columns),
                                  captions=getattr(data, "captions", None), image_size=args.image_size,
                                  mask_threshold=args.mask_threshold, shuffle_buffer=1)
        label = f"held out: {where}" + (f" split {args.eval_split}" if args.eval_split else "")
        src = factory(seed=seed, absent_prob=data_kw["absent_prob"], pairs=None, degrade=0.0)
    else:
        kw = {**data_kw, "seed": seed}
        kw.pop("rank", None), kw.pop("world_size", None)
        src = data(**kw)
        label = ("samples of the training data (--data, not held out: give --eval-data or --eval-split)" if args.data
                 else f"fresh samples of the data source (seed {seed}; the training used seed {args.seed})")
    gen = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    whole, measured = [], 0
    params.eval()
    with torch.no_grad():
        while measured < n:
            x, exs = src(min(args.batch, n - measured))
            out = losses(x, exs, gen, train=False, net=params)
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(exs)
                counts[k] = counts.get(k, 0) + len(exs)
            for e in exs:
                if e.mask is not None:
                    whole.append(float(e.mask.mean()))
            measured += len(exs)
    params.train()
    q = {k: round(sums[k] / counts[k], 4) for k in sums}
    if whole:
        q["region_iou_whole_image"] = round(sum(whole) / len(whole), 4)
        q["edit_pairs_measured"] = len(whole)
    q["measured_on"] = label
    q["samples"] = measured
    q["after_steps"] = steps
    return q


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="regionedit train region", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def main(argv: list[str] | None = None, data: RegionDataFactory | None = None) -> int:
    from regionedit.training.distributed import relaunch_under_torchrun

    if data is None:  # `accelerate launch ... -m regionedit.training.region` on CPU: start the processes asked for
        relaunched = relaunch_under_torchrun(["train", "region", *(sys.argv[1:] if argv is None else argv)])
        if relaunched is not None:
            return relaunched
    return run(build_parser().parse_args(argv), data)


if __name__ == "__main__":
    sys.exit(main())
