"""The bundled VAE (``regionedit train world-models --only vae``, stage 1: encoder and decoder) and its decoder
fine-tune (``--only vae_decoder``, stage 2: edge-weighted, the latent space unchanged); both write ``vae/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from regionedit.models import configs as C
from regionedit.training.common import EMA, Run, earlier_record, train_loop
from regionedit.world.training import world_data as D
from regionedit.world.training.component_common import add_finetune_record, adamw, cosine_lr, save_fp16, write_state


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
    run = Run.for_args(args.out / ("vae_decoder" if decoder_only else "vae"), args)
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
    opt = adamw(model, lr, 0.0)
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
                     lr_at=cosine_lr(lr, 50 if decoder_only else 200, total),
                     extra_state=(lambda: {"earlier_training": earlier}) if decoder_only else None)
    export_vae(ema.model, args.export)
    if decoder_only:  # the encoder's training record stays; this decoder fine-tune is added
        loss = f"L1 + MSE, weighted x{1 + edge_w:g} within 1 px of an edge" if edge_w else "L1 + MSE"
        add_finetune_record(folder, "vae", "decoder_finetune",
                             {"steps": res["step"], "cpu_minutes": round(res["seconds"] / 60, 1), "lr": lr, "loss": loss,
                              **({"earlier": earlier_ft} if earlier_ft else {})})
    else:
        write_state(folder, "vae", res["step"], res["seconds"], args.seed, {"batch": args.batch or 32})
    return res


@torch.no_grad()
def export_vae(model, export: Path) -> None:
    # SD's scaling_factor: 1 / std of latents, so scaled latents have unit variance
    x = D.vae_batch(np.random.default_rng(999), 256)
    z = model.encode(x).latent_dist.mode()
    model.register_to_config(scaling_factor=float(1.0 / z.std()))
    save_fp16(model, export / "vae")
