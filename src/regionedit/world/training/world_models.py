"""``regionedit train world-models``: train the bundled miniature models on the shapes world.

Components, in dependency order (each resumable, each exported to the diffusers-format folder):

=====================  ===========================================  ==============================
name                   class                                        objective
=====================  ===========================================  ==============================
tokenizer              transformers.CLIPTokenizer (BPE)             BPE on world text
clip                   transformers.CLIPModel (+ text_encoder)      contrastive image-caption
vae                    diffusers.AutoencoderKL                      L1 + MSE + 1e-6 KL
vae_decoder            the same VAE, decoder only (stage 2)         L1 + MSE, x10 near edges
instruction_encoder    transformers.T5EncoderModel                  seq2seq instruction -> edit
unet                   diffusers.UNet2DConditionModel (4 ch)        v-prediction, min-SNR, CFG drop
unet_inpaint           diffusers.UNet2DConditionModel (9 ch)        as SD-inpainting, init from unet
unet_ip2p              diffusers.UNet2DConditionModel (8 ch)        InstructPix2Pix baseline, edit pairs
=====================  ===========================================  ==============================

Run folders (``--out``) hold ``<name>/state.pt`` checkpoints and ``log.jsonl``; kill and rerun the
same command to resume. Without a checkpoint, a component starts from the weights already in the
export folder (``--export``, default: the package's bundled folder), so training continues from what
ships.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from regionedit.models import configs as C
from regionedit.models.bundled import MODEL_INDEX, bundled_dir
from regionedit.world.training import world_data as D
from regionedit.training.common import EMA, Run, earlier_record, train_loop
from regionedit.world.training.model_cards import write_text_atomic
from regionedit.world import spec

# "vae_decoder" is the VAE's second stage (SD's ft-MSE recipe): the decoder alone, edge-weighted, the latent space
# unchanged; it writes the same vae/ folder and may run before or after the UNets
ORDER = ("tokenizer", "clip", "vae", "vae_decoder", "instruction_encoder", "unet", "unet_inpaint", "unet_ip2p")


# --------------------------------------------------------------------------------------------------
# export helpers


def _save_fp16(model, folder: Path) -> None:
    """``save_pretrained`` in fp16 safetensors, atomically (temp folder, then rename)."""
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model = model.to(torch.float16)
    model.save_pretrained(tmp, safe_serialization=True)
    model.to(torch.float32)
    cfg_p = tmp / "config.json"  # a model loaded from a folder records its path: not ours to ship
    if cfg_p.exists():
        cfg = json.loads(cfg_p.read_text())
        if cfg.pop("_name_or_path", None) is not None:
            cfg_p.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    cards = [folder / "README.md", folder / "training_state.json"]
    keep = {p.name: p.read_text() for p in cards if p.exists()}
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    for name, text in keep.items():
        (folder / name).write_text(text)


def _write_state(folder: Path, component: str, step: int, seconds: float, seed: int, extra: dict) -> None:
    st = {"component": component, "steps": step, "cpu_minutes": round(seconds / 60, 1), "seed": seed, **extra}
    (folder / "training_state.json").write_text(json.dumps(st, indent=2) + "\n")


def _add_finetune_record(folder: Path, component: str, key: str, record: dict) -> None:
    """Keep ``folder``'s training record and add a later fine-tune under ``key`` (the card shows both)."""
    state_p = folder / "training_state.json"
    st = json.loads(state_p.read_text()) if state_p.exists() else {"component": component}
    st[key] = record
    state_p.write_text(json.dumps(st, indent=2) + "\n")


def _load_tokenizer(export: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(export / "tokenizer")


def _write_model_index(export: Path) -> None:
    (export / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2) + "\n")
    sched = C.build_scheduler()
    sched.save_pretrained(export / "scheduler")


# --------------------------------------------------------------------------------------------------
# components


def train_tokenizer(args) -> dict:
    from regionedit.world.training.tokenizer import build_world_tokenizer

    tok = build_world_tokenizer(model_max_length=C.MAX_TOKENS)
    tok.save_pretrained(args.export / "tokenizer")
    return {"vocab_size": len(tok)}


def _adamw(model, lr, wd=0.01):
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=wd)


def _cosine(lr: float, warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    return f


class _ClipWithShapeAux(torch.nn.Module):
    """Training-time wrapper: CLIP plus a linear head that reads each projected patch feature
    (``F_img``, as the region predictor sees it) and classifies the shape under it (5 shapes +
    background). Contrastive captions alone left CLIP shape-blind (zero-shot shape 0.28, a linear probe
    on its image features 0.31); the dense labels teach every patch of an object what it is part of.
    Only ``clip`` is exported."""

    def __init__(self, clip):
        super().__init__()
        self.clip = clip
        self.shape_head = torch.nn.Linear(clip.config.projection_dim, len(spec.SHAPES) + 1)


def train_clip(args) -> dict:
    from transformers import CLIPModel

    from regionedit.localize.features import image_features

    tok = _load_tokenizer(args.export)
    folder = args.export / "clip"
    run = Run(args.out / "clip")
    # continuing from the shipped CLIP (a fresh --out next to a trained folder) is a fine-tune: its card keeps
    # the original record and adds this run's; the flag survives resumes in the run state
    resumed = run.load() if run.exists() else None
    from_shipped = resumed.get("from_shipped", False) if resumed else (folder / "config.json").exists()
    clip = CLIPModel.from_pretrained(folder, torch_dtype=torch.float32) if from_shipped and not resumed else C.build_clip(tok)
    aux = args.clip_shape_aux
    if resumed:
        has_head = any(k.startswith("shape_head.") for k in resumed["model"])
        if has_head != (aux > 0):
            raise SystemExit(
                f"{run.dir} was trained {'with' if has_head else 'without'} the dense shape loss: resume it with "
                f"--clip-shape-aux {'> 0' if has_head else '0'}, or start a fresh --out"
            )
    model = _ClipWithShapeAux(clip) if aux > 0 else clip
    opt = _adamw(model, 1e-3, 0.1)
    rng = np.random.default_rng(args.seed)

    def step_fn(step, gen):
        images, texts, negatives, *labels = D.clip_batch(rng, args.batch or 128, with_labels=aux > 0,
                                                         degrade_prob=args.degrade)
        b = len(texts)
        ids = tok(texts + negatives, padding="max_length", max_length=C.MAX_TOKENS, truncation=True, return_tensors="pt")
        patches, img = image_features(clip, images)
        txt = clip.get_text_features(input_ids=ids.input_ids, attention_mask=ids.attention_mask)
        txt = getattr(txt, "pooler_output", txt)
        img, txt = torch.nn.functional.normalize(img, dim=-1), torch.nn.functional.normalize(txt, dim=-1)
        logits = clip.logit_scale.exp() * img @ txt.T  # (B, 2B): captions, then shape/colour-swapped hard negatives
        target = torch.arange(b)
        loss_i = torch.nn.functional.cross_entropy(logits, target)  # image -> text, with hard negatives
        loss_t = torch.nn.functional.cross_entropy(logits[:, :b].T, target)  # text -> image
        out = {"loss_clip": 0.5 * (loss_i + loss_t)}
        if aux > 0:
            pl = model.shape_head(patches)  # (B, N, 6), N = 16 x 16 patches in raster order
            lab = labels[0].flatten()
            ce = torch.nn.functional.cross_entropy(pl.flatten(0, 1), lab, reduction="none")
            obj = lab < len(spec.SHAPES)  # ~1 patch in 8: balance objects against background
            out["loss_shape"] = 0.5 * (ce[obj].mean() + ce[~obj].mean()) if obj.any() else ce.mean()
        loss = out["loss_clip"] + aux * out.get("loss_shape", 0.0)
        loss.backward()
        return {k: v.item() for k, v in out.items()}

    res = train_loop(run, model, opt, step_fn, args.minutes, args.max_steps, args.seed, lr_at=_cosine(1e-3, 100, 3000),
                     extra_state=lambda: {"from_shipped": from_shipped})
    wrote_text = export_clip(clip, tok, args.export, replace_text_encoder=getattr(args, "replace_text_encoder", False))
    extra = {"batch": args.batch or 128, "shape_aux_weight": aux}
    if from_shipped and res["step"] == 0:
        pass  # nothing trained (e.g. `--max-steps 0 --replace-text-encoder` on the shipped CLIP): its record stands
    elif from_shipped:
        _add_finetune_record(folder, "clip", "finetune", {"steps": res["step"], "cpu_minutes": round(res["seconds"] / 60, 1), **extra})
    else:
        _write_state(folder, "clip", res["step"], res["seconds"], args.seed, extra)
    if wrote_text:
        _write_text_encoder_card(args.export)
    return res


def export_clip(model, tok, export: Path, replace_text_encoder: bool = False) -> bool:
    """Write ``clip/`` (model, tokenizer, image processor) and, as Stable Diffusion's text encoder,
    CLIP's text tower to ``text_encoder/``. Once a UNet exists the text encoder is kept (the UNets were
    trained on it) unless ``replace_text_encoder``: then every UNet must be retrained on the new one.
    Returns whether ``text_encoder/`` was written."""
    from transformers import CLIPImageProcessor, CLIPTextModel

    _save_fp16(model, export / "clip")
    tok.save_pretrained(export / "clip")
    proc = CLIPImageProcessor(
        size={"shortest_edge": C.IMAGE_SIZE},
        crop_size={"height": C.IMAGE_SIZE, "width": C.IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        resample=3,
    )
    proc.save_pretrained(export / "clip")
    # the Stable Diffusion text encoder is CLIP's text tower (as SD uses CLIP ViT-L/14's). It is frozen
    # once a UNet has been trained on it: later CLIP training must not change the UNet's conditioning.
    if not replace_text_encoder and (export / "unet" / "config.json").exists() and (export / "text_encoder" / "config.json").exists():
        print("[clip] text_encoder kept: the UNets were trained on it", flush=True)
        return False
    text = CLIPTextModel(model.config.text_config)
    missing, unexpected = text.load_state_dict(model.text_model.state_dict(), strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        target = getattr(text, "text_model", text)  # transformers < 5 wraps the tower in .text_model
        target.load_state_dict(model.text_model.state_dict())
    _save_fp16(text, export / "text_encoder")
    if replace_text_encoder and (export / "unet" / "config.json").exists():
        print("[clip] text_encoder replaced: retrain unet, unet_inpaint and unet_ip2p on it", flush=True)
    return True


def _write_text_encoder_card(export: Path) -> None:
    """The text encoder's model card: it is CLIP's text tower, so its training and quality are CLIP's."""
    clip_state = export / "clip" / "training_state.json"
    record = json.loads(clip_state.read_text()) if clip_state.exists() else {}
    lines = [
        "# text_encoder",
        "",
        "transformers CLIPTextModel: the text tower of the bundled CLIP (`../clip`), exported as Stable Diffusion's",
        "text encoder (SD uses CLIP ViT-L/14's text tower the same way). The UNets condition on its last hidden",
        "states (B, 48, 128), so it is frozen for them: its training and measured quality are CLIP's, see `../clip/README.md`.",
        "",
        "Exported from the CLIP training record:",
        "",
        "```json",
        json.dumps(record, indent=2, sort_keys=True),
        "```",
        "",
    ]
    write_text_atomic(export / "text_encoder" / "README.md", "\n".join(lines))


VAE_EDGE_WEIGHT = 9.0  # decoder fine-tune: extra loss weight near edges (from the 2026-11-24 fine-tune on)


def edge_weight(x: torch.Tensor, extra: float) -> torch.Tensor:
    """Per-pixel loss weight ``1 + extra`` within one pixel of an edge of ``x``, else 1.

    x: (B, 3, H, W) in [-1, 1]; returns (B, 1, H, W) float. An edge is a pixel whose colour differs from a
    4-neighbour by more than 0.1 (in [-1, 1] units, ~13 levels). Small shapes are all edge: a plain L1/MSE
    reconstruction lets a 4-px star come back as a blob (the shape measurement then reads a circle) at
    almost no cost, so the edges are where a decoder fine-tune spends its weight.
    """
    if extra == 0:
        return torch.ones_like(x[:, :1])
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().amax(1, keepdim=True)
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().amax(1, keepdim=True)
    e = torch.zeros_like(x[:, :1])
    e[..., :, 1:] += dx > 0.1
    e[..., :, :-1] += dx > 0.1
    e[..., 1:, :] += dy > 0.1
    e[..., :-1, :] += dy > 0.1
    e = torch.nn.functional.max_pool2d((e > 0).float(), 3, stride=1, padding=1)
    return 1.0 + extra * e


def train_vae(args, decoder_only: bool | None = None) -> dict:
    """The VAE (``decoder_only=False``: stage 1, encoder and decoder) or its decoder fine-tune (stage 2, run
    folder ``--out/vae_decoder``); both write ``--export/vae``. ``--vae-decoder-only`` selects stage 2 too."""
    from diffusers import AutoencoderKL

    if decoder_only is None:
        decoder_only = getattr(args, "vae_decoder_only", False)
    folder = args.export / "vae"
    run = Run(args.out / ("vae_decoder" if decoder_only else "vae"))
    model = AutoencoderKL.from_pretrained(folder, torch_dtype=torch.float32) if (folder / "config.json").exists() and not run.exists() else C.build_vae()
    if decoder_only:
        # Stable Diffusion's ft-MSE recipe: only the decoder learns, so the latent space (and every UNet trained
        # on it) is unchanged; start it from the shipped VAE in a fresh --out folder
        if not (folder / "config.json").exists():
            raise SystemExit(f"the VAE decoder stage (--only vae_decoder) fine-tunes an existing VAE, but {folder} has none: train the VAE first (--only vae)")
        for mod in (model.encoder, model.quant_conv):
            if mod is not None:
                mod.requires_grad_(False)
    lr = 5e-4 if decoder_only else 2e-3
    opt = _adamw(model, lr, 0.0)
    ema = EMA(model, 0.999)
    rng = np.random.default_rng(args.seed + 1)
    total = args.max_steps or (2000 if decoder_only else 6000)
    edge_w = VAE_EDGE_WEIGHT if decoder_only else 0.0
    # a decoder fine-tune on top of an earlier one keeps the earlier one's record (it travels in the run state)
    earlier = earlier_record(run, folder) if decoder_only else None
    earlier_ft = (earlier or {}).get("decoder_finetune")

    def step_fn(step, gen):
        x = D.vae_batch(rng, args.batch or 32)
        with torch.set_grad_enabled(not decoder_only):
            post = model.encode(x).latent_dist
        z = post.sample(generator=gen)
        y = model.decode(z).sample
        w = edge_weight(x, edge_w)
        rec = ((y - x).abs() * w).mean() + ((y - x).pow(2) * w).mean()
        kl = post.kl().mean()
        loss = rec + 1e-6 * kl
        loss.backward()
        with torch.no_grad():
            psnr = 10 * torch.log10(4.0 / (y - x).pow(2).mean())
        return {"loss": loss.item(), "kl": kl.item(), "psnr_db": psnr.item()}

    res = train_loop(run, model, opt, step_fn, args.minutes, args.max_steps, args.seed, ema=ema,
                     lr_at=_cosine(lr, 50 if decoder_only else 200, total),
                     extra_state=(lambda: {"earlier_training": earlier}) if decoder_only else None)
    export_vae(ema.model, args.export)
    if decoder_only:  # the encoder's training record stays; this decoder fine-tune is added
        loss = f"L1 + MSE, weighted x{1 + edge_w:g} within 1 px of an edge" if edge_w else "L1 + MSE"
        _add_finetune_record(folder, "vae", "decoder_finetune",
                             {"steps": res["step"], "cpu_minutes": round(res["seconds"] / 60, 1), "lr": lr, "loss": loss,
                              **({"earlier": earlier_ft} if earlier_ft else {})})
    else:
        _write_state(folder, "vae", res["step"], res["seconds"], args.seed, {"batch": args.batch or 32})
    return res


@torch.no_grad()
def export_vae(model, export: Path) -> None:
    # SD's scaling_factor: 1 / std of latents, so scaled latents have unit variance
    x = D.vae_batch(np.random.default_rng(999), 256)
    z = model.encode(x).latent_dist.mode()
    model.register_to_config(scaling_factor=float(1.0 / z.std()))
    _save_fp16(model, export / "vae")


# --------------------------------------------------------------------------------------------------
# instruction encoder (T5), pre-trained seq2seq: instruction -> structured edit


def edit_to_text(edit: dict) -> str:
    """Canonical structured form of a world edit, the seq2seq target of the instruction encoder."""

    def ref(r):
        return f"{r['color'] or 'any'} {r['shape']}"

    op = edit["op"]
    if op == "remove":
        return f"remove {ref(edit['ref'])}"
    if op == "add":
        return f"add {edit['size'] or 'any'} {edit['color']} {edit['shape']} {edit['area'] or 'anywhere'}"
    if op == "local":
        return f"replace {ref(edit['ref'])} with {edit['color']} {edit['shape']}"
    if op == "color":
        return f"recolor {ref(edit['ref'])} {edit['color']}"
    if op == "size":
        return f"resize {ref(edit['ref'])} {'bigger' if edit['bigger'] else 'smaller'}"
    if op == "background":
        return f"background {edit['top']} {edit['bottom'] or 'solid'}"
    raise ValueError(f"no structured form for op {op!r}")


def train_instruction_encoder(args) -> dict:
    from transformers import T5EncoderModel

    from regionedit.world import sample_edit

    tok = _load_tokenizer(args.export)
    folder = args.export / "instruction_encoder"
    run = Run(args.out / "instruction_encoder")
    model = C.build_instruction_encoder(tok)
    if (folder / "config.json").exists() and not run.exists():
        enc = T5EncoderModel.from_pretrained(folder, torch_dtype=torch.float32)
        model.encoder.load_state_dict(enc.encoder.state_dict())
        model.shared.load_state_dict(enc.shared.state_dict())
    opt = _adamw(model, 1e-3)
    counter = {"i": 0}
    cats = [c for c in ("remove", "add", "local", "color", "size", "background")]

    def step_fn(step, gen):
        srcs, tgts = [], []
        for _ in range(args.batch or 64):
            i = counter["i"]
            counter["i"] += 1
            s = sample_edit(args.seed + 7, i, category=cats[i % len(cats)])
            srcs.append(s.instruction)
            tgts.append(edit_to_text(s.edit))
        enc = tok(srcs, padding="max_length", max_length=C.MAX_TOKENS, truncation=True, return_tensors="pt")
        lab = tok(tgts, padding="max_length", max_length=24, truncation=True, return_tensors="pt")
        labels = lab.input_ids[:, 1:].clone()  # drop BOS: it is the decoder start token
        labels[lab.attention_mask[:, 1:] == 0] = -100
        out = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, labels=labels)
        out.loss.backward()
        return {"loss": out.loss.item()}

    if run.exists():  # resume the data stream where it stopped
        counter["i"] = run.load().get("counter", 0)
    res = train_loop(run, model, opt, step_fn, args.minutes, args.max_steps, args.seed,
                     extra_state=lambda: {"counter": counter["i"]}, lr_at=_cosine(1e-3, 50, 2000))
    export_instruction_encoder(model, tok, args.export)
    _write_state(folder, "instruction_encoder", res["step"], res["seconds"], args.seed, {"batch": args.batch or 64})
    return res


def export_instruction_encoder(model, tok, export: Path) -> None:
    from transformers import T5EncoderModel

    enc = T5EncoderModel(model.config)
    enc.encoder.load_state_dict(model.encoder.state_dict())
    enc.shared.load_state_dict(model.shared.state_dict())
    _save_fp16(enc, export / "instruction_encoder")
    tok.save_pretrained(export / "instruction_encoder")


# --------------------------------------------------------------------------------------------------
# diffusion UNets (text-to-image, then inpainting initialised from it)


def _frozen_vae_and_text(export: Path):
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    vae = AutoencoderKL.from_pretrained(export / "vae", torch_dtype=torch.float32).eval().requires_grad_(False)
    text = CLIPTextModel.from_pretrained(export / "text_encoder", torch_dtype=torch.float32).eval().requires_grad_(False)
    return vae, text


@torch.no_grad()
def _encode_text(tok, text_encoder, prompts: list[str]) -> torch.Tensor:
    ids = tok(prompts, padding="max_length", max_length=C.MAX_TOKENS, truncation=True, return_tensors="pt")
    return text_encoder(ids.input_ids)[0]  # (B, 48, 128), as Stable Diffusion conditions on


def _diffusion_loss(unet, scheduler, latents, unet_extra, cond, gen, region_weight=None, snr_gamma=5.0):
    """v-prediction loss with min-SNR-gamma weighting (Hang et al. 2023)."""
    b = latents.shape[0]
    noise = torch.randn(latents.shape, generator=gen)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), generator=gen)
    noisy = scheduler.add_noise(latents, noise, t)
    target = scheduler.get_velocity(latents, noise, t)
    inp = noisy if unet_extra is None else torch.cat([noisy, unet_extra], dim=1)
    pred = unet(inp, t, cond).sample
    ac = scheduler.alphas_cumprod[t]
    snr = ac / (1 - ac)
    w = torch.clamp(snr, max=snr_gamma) / (snr + 1)  # min-SNR weight for v-prediction
    err = (pred - target).pow(2)
    if region_weight is not None:
        err = err * region_weight
    loss = (err.mean(dim=(1, 2, 3)) * w).mean()
    return loss


def _cfg_drop(prompts: list[str], rng: np.random.Generator, p: float = 0.1) -> list[str]:
    """Classifier-free guidance dropout: replace a prompt by the empty prompt with probability p."""
    return ["" if rng.random() < p else t for t in prompts]


def _init_unet(export: Path, folder: Path, run: Run, in_channels: int):
    """The UNet a run starts from: the shipped weights in ``folder`` when there is no checkpoint yet
    (training continues from what we ship), else a fresh model; 8/9-channel UNets start, as
    SD-inpainting and InstructPix2Pix did, from the text-to-image UNet with zero-initialised extra input
    channels."""
    from diffusers import UNet2DConditionModel

    if (folder / "config.json").exists() and not run.exists():
        return UNet2DConditionModel.from_pretrained(folder, torch_dtype=torch.float32)
    model = C.build_unet(in_channels)
    t2i_dir = export / "unet"
    if in_channels != C.LATENT_CHANNELS and (t2i_dir / "config.json").exists():
        sd = UNet2DConditionModel.from_pretrained(t2i_dir, torch_dtype=torch.float32).state_dict()
        w = sd["conv_in.weight"]
        extra = in_channels - w.shape[1]
        sd["conv_in.weight"] = torch.cat([w, torch.zeros(w.shape[0], extra, *w.shape[2:])], dim=1)
        model.load_state_dict(sd)
    return model


def _train_unet_component(args, name: str, in_channels: int, seed_offset: int, make_step, extra_state=None) -> dict:
    """Shared setup of the three UNet trainers: frozen VAE and text encoder, the UNet (see
    :func:`_init_unet`), AdamW with warm-up + cosine, EMA 0.999, resumable loop, fp16 export of the EMA
    weights. ``make_step(model, vae, text, tok, sched, rng)`` returns the per-step function."""
    tok = _load_tokenizer(args.export)
    vae, text = _frozen_vae_and_text(args.export)
    folder = args.export / name
    run = Run(args.out / name)
    # a run that starts from the shipped weights keeps their record as its earlier training (the card shows
    # both); the record travels in the run state, so resumes keep it
    earlier = earlier_record(run, folder)
    model = _init_unet(args.export, folder, run, in_channels)
    opt = _adamw(model, 3e-4, 0.01)
    ema = EMA(model, 0.999)
    sched = C.build_scheduler()
    rng = np.random.default_rng(args.seed + seed_offset)
    step_fn = make_step(model, vae, text, tok, sched, rng)
    res = train_loop(run, model, opt, step_fn, args.minutes, args.max_steps, args.seed, ema=ema,
                     extra_state=lambda: {**(extra_state() if extra_state else {}), "earlier_training": earlier},
                     lr_at=_cosine(3e-4, 200, 20000))
    _save_fp16(ema.model, folder)
    record = {"batch": args.batch or 64, "ema": 0.999, **({"earlier_training": earlier} if earlier else {})}
    _write_state(folder, name, res["step"], res["seconds"], args.seed, record)
    return res


T2I_OBJECT_WEIGHT = 5.0  # loss weight on latent cells with object pixels (from step 1431 on)


def train_unet(args) -> dict:
    """Text-to-image UNet (4 channels) on rendered scenes and their captions."""

    def make_step(model, vae, text, tok, sched, rng):
        sf = vae.config.scaling_factor

        def step_fn(step, gen):
            x, prompts, objects = D.t2i_batch(rng, args.batch or 64, with_objects=True)
            with torch.no_grad():
                lat = vae.encode(x).latent_dist.sample(generator=gen) * sf
            cond = _encode_text(tok, text, _cfg_drop(prompts, rng))
            # objects are ~15% of the pixels but all of what the caption asks: weight them (the shapes were
            # still wrong after 1.7k unweighted steps while colours were mostly right)
            w = 1.0 + (T2I_OBJECT_WEIGHT - 1.0) * torch.nn.functional.max_pool2d(objects, 4)
            loss = _diffusion_loss(model, sched, lat, None, cond, gen, region_weight=w)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            return {"loss": loss.item()}

        return step_fn

    return _train_unet_component(args, "unet", C.LATENT_CHANNELS, 3, make_step)


def inpaint_inputs(vae, x: torch.Tensor, mask: torch.Tensor, sf: float, gen=None):
    """SD-inpainting conditioning: ``(mask_16, masked_image_latents)`` for 64x64 images.

    x: (B, 3, 64, 64) in [-1, 1]; mask: (B, 1, 64, 64) in {0, 1}, 1 = fill. The masked image keeps
    pixels where mask < 0.5 and zeros the rest, and the mask is downsampled by nearest interpolation,
    exactly as diffusers' StableDiffusionInpaintPipeline prepares them.
    """
    masked = x * (mask < 0.5)
    with torch.no_grad():
        mlat = vae.encode(masked).latent_dist.mode() * sf
    m16 = torch.nn.functional.interpolate(mask, size=mlat.shape[-2:])
    return m16, mlat


INPAINT_BACKGROUND_PROB = 0.2  # share of background-recolour samples (from the run of 2026-11-24 on)
INPAINT_TIGHT_PROB = 0.3  # share of object regions that are the object's footprint (from 2026-11-24, 21:50 on)


def train_unet_inpaint(args) -> dict:
    """Inpainting UNet (9 channels: noisy latents, mask, masked-image latents), as SD-inpainting.

    One sample in five repaints the whole background around the objects ("a white background"): a
    model trained on object-sized regions only filled a background-sized region with objects. Three
    object regions in ten are the object's footprint (recolours and removals of a found object get such
    regions): trained on discs and boxes only, the model drew a blob inside a star-shaped region."""

    def make_step(model, vae, text, tok, sched, rng):
        sf = vae.config.scaling_factor

        def step_fn(step, gen):
            b = D.inpaint_batch(rng, args.batch or 64, background_prob=INPAINT_BACKGROUND_PROB, tight_prob=INPAINT_TIGHT_PROB)
            with torch.no_grad():
                lat = vae.encode(b.image).latent_dist.sample(generator=gen) * sf
            m16, mlat = inpaint_inputs(vae, b.image, b.mask, sf)
            cond = _encode_text(tok, text, _cfg_drop(b.prompt, rng))
            # the region is what the model must get right: weight it 5x (outside is given)
            region_w = 1.0 + 4.0 * torch.nn.functional.max_pool2d(b.mask, 4)
            loss = _diffusion_loss(model, sched, lat, torch.cat([m16, mlat], 1), cond, gen, region_weight=region_w)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            return {"loss": loss.item()}

        return step_fn

    return _train_unet_component(args, "unet_inpaint", 9, 4, make_step)


def train_unet_ip2p(args) -> dict:
    """InstructPix2Pix baseline (issue: evaluation baselines): an 8-channel UNet (noisy latents + source
    latents) fine-tuned on world *edit pairs* from the text-to-image UNet, conditioned on the instruction,
    as diffusers' train_instruct_pix2pix example does (5% image, 5% text, 5% both dropped for CFG)."""
    from regionedit.world import sample_edit

    run = Run(args.out / "unet_ip2p")
    counter = {"i": run.load().get("counter", 0) if run.exists() else 0}

    def make_step(model, vae, text, tok, sched, rng):
        sf = vae.config.scaling_factor

        def step_fn(step, gen):
            samples = []
            for _ in range(args.batch or 64):
                samples.append(sample_edit(args.seed + 8, counter["i"], category=None))
                counter["i"] += 1
            src = D.to_tensor([s.source for s in samples])
            tgt = D.to_tensor([s.target for s in samples])
            with torch.no_grad():
                lat = vae.encode(tgt).latent_dist.sample(generator=gen) * sf
                src_lat = vae.encode(src).latent_dist.mode()  # unscaled, as the IP2P pipeline feeds it
            r = torch.from_numpy(rng.random(len(samples))).float()
            prompts = ["" if (ri < 0.05 or 0.10 <= ri < 0.15) else s.instruction for ri, s in zip(r.tolist(), samples)]
            # r < 0.05: text dropped; 0.05 <= r < 0.10: image dropped; 0.10 <= r < 0.15: both dropped
            keep_img = 1.0 - ((r >= 0.05) & (r < 0.15)).float()[:, None, None, None]
            cond = _encode_text(tok, text, prompts)
            loss = _diffusion_loss(model, sched, lat, src_lat * keep_img, cond, gen)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            return {"loss": loss.item()}

        return step_fn

    return _train_unet_component(args, "unet_ip2p", 8, 5, make_step, extra_state=lambda: {"counter": counter["i"]})


COMPONENTS = {
    "tokenizer": train_tokenizer,
    "clip": train_clip,
    "vae": train_vae,
    "vae_decoder": lambda args: train_vae(args, decoder_only=True),
    "instruction_encoder": train_instruction_encoder,
    "unet": train_unet,
    "unet_inpaint": train_unet_inpaint,
    "unet_ip2p": train_unet_ip2p,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="regionedit train world-models", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", choices=ORDER, action="append", help="train only this component (repeatable); default: all, in order")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget per component for this invocation")
    p.add_argument("--max-steps", type=int, default=None, help="stop a component at this many total steps")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: per component)")
    p.add_argument("--seed", type=int, default=0, help="training seed (data and noise)")
    p.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs (keep it out of git)")
    p.add_argument("--export", type=Path, default=None, help="model folder to write (default: the package's bundled shapes-64 folder)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--degrade", type=float, default=0.0,
                   help="clip: share of training images passed through a JPEG (quality 60-95) or noise (sigma 1-4) "
                        "(world_data.degrade; default 0, the shipped CLIP saw lossless renders only)")
    p.add_argument("--clip-shape-aux", type=float, default=1.0,
                   help="weight of CLIP's auxiliary dense shape loss on its patch features (0: captions only)")
    p.add_argument("--replace-text-encoder", action="store_true",
                   help="with --only clip: export CLIP's text tower as text_encoder even though UNets exist (then retrain every UNet on it)")
    p.add_argument("--vae-decoder-only", action="store_true",
                   help="with --only vae: the same as --only vae_decoder (fine-tune only the VAE decoder; latents, hence the UNets, unchanged)")


def run(args) -> int:
    run_components(args)
    return 0


def run_components(args) -> dict[str, dict]:
    """Train the components ``args.only`` (default: all, in order): ``{name: train_loop result}``
    (``step``, ``seconds``, ``interrupted``; components that return none map to ``{}``)."""
    torch.set_num_threads(args.threads)
    args.export = Path(args.export or bundled_dir("shapes-64"))
    args.export.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items() if k != "func"}, indent=2))
    _write_model_index(args.export)
    results = {}
    for name in args.only or ORDER:
        if name not in COMPONENTS:
            print(f"[{name}] not implemented yet, skipped", flush=True)
            continue
        t = time.time()
        print(f"[{name}] training for up to {args.minutes} min", flush=True)
        res = COMPONENTS[name](args)
        results[name] = res if isinstance(res, dict) else {}
        print(f"[{name}] done in {(time.time() - t) / 60:.1f} min: {res}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
