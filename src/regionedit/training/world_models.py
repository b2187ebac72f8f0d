"""``regionedit train world-models``: train the bundled miniature models on the shapes world.

Components, in dependency order (each resumable, each exported to the diffusers-format folder):

=====================  ===========================================  ==============================
name                   class                                        objective
=====================  ===========================================  ==============================
tokenizer              transformers.CLIPTokenizer (BPE)             BPE on world text
clip                   transformers.CLIPModel (+ text_encoder)      contrastive image-caption
vae                    diffusers.AutoencoderKL                      L1 + MSE + 1e-6 KL
instruction_encoder    transformers.T5EncoderModel                  seq2seq instruction -> edit
unet                   diffusers.UNet2DConditionModel (4 ch)        v-prediction, min-SNR, CFG drop
unet_inpaint           diffusers.UNet2DConditionModel (9 ch)        as SD-inpainting, init from unet
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
from regionedit.training import world_data as D
from regionedit.training.common import EMA, Run, train_loop

ORDER = ("tokenizer", "clip", "vae", "instruction_encoder", "unet", "unet_inpaint")


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
    from regionedit.models.tokenizer import build_world_tokenizer

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


def train_clip(args) -> dict:
    from transformers import CLIPModel

    tok = _load_tokenizer(args.export)
    folder = args.export / "clip"
    run = Run(args.out / "clip")
    model = CLIPModel.from_pretrained(folder, torch_dtype=torch.float32) if (folder / "config.json").exists() and not run.exists() else C.build_clip(tok)
    opt = _adamw(model, 1e-3, 0.1)
    rng = np.random.default_rng(args.seed)

    def step_fn(step, gen):
        images, texts = D.clip_batch(rng, args.batch or 128)
        ids = tok(texts, padding="max_length", max_length=C.MAX_TOKENS, truncation=True, return_tensors="pt")
        out = model(input_ids=ids.input_ids, attention_mask=ids.attention_mask, pixel_values=images, return_loss=True)
        out.loss.backward()
        return {"loss": out.loss.item()}

    res = train_loop(run, model, opt, step_fn, args.minutes, args.max_steps, args.seed, lr_at=_cosine(1e-3, 100, 3000))
    export_clip(model, tok, args.export)
    _write_state(args.export / "clip", "clip", res["step"], res["seconds"], args.seed, {"batch": args.batch or 128})
    return res


def export_clip(model, tok, export: Path) -> None:
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
    # the Stable Diffusion text encoder is CLIP's text tower (as SD uses CLIP ViT-L/14's)
    text = CLIPTextModel(model.config.text_config)
    missing, unexpected = text.load_state_dict(model.text_model.state_dict(), strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        target = getattr(text, "text_model", text)  # transformers < 5 wraps the tower in .text_model
        target.load_state_dict(model.text_model.state_dict())
    _save_fp16(text, export / "text_encoder")


def train_vae(args) -> dict:
    from diffusers import AutoencoderKL

    folder = args.export / "vae"
    run = Run(args.out / "vae")
    model = AutoencoderKL.from_pretrained(folder, torch_dtype=torch.float32) if (folder / "config.json").exists() and not run.exists() else C.build_vae()
    opt = _adamw(model, 2e-3, 0.0)
    ema = EMA(model, 0.999)
    rng = np.random.default_rng(args.seed + 1)
    total = args.max_steps or 6000

    def step_fn(step, gen):
        x = D.vae_batch(rng, args.batch or 32)
        post = model.encode(x).latent_dist
        z = post.sample(generator=gen)
        y = model.decode(z).sample
        rec = (y - x).abs().mean() + (y - x).pow(2).mean()
        kl = post.kl().mean()
        loss = rec + 1e-6 * kl
        loss.backward()
        with torch.no_grad():
            psnr = 10 * torch.log10(4.0 / (y - x).pow(2).mean())
        return {"loss": loss.item(), "kl": kl.item(), "psnr_db": psnr.item()}

    res = train_loop(run, model, opt, step_fn, args.minutes, args.max_steps, args.seed, ema=ema, lr_at=_cosine(2e-3, 200, total))
    export_vae(ema.model, args.export)
    _write_state(args.export / "vae", "vae", res["step"], res["seconds"], args.seed, {"batch": args.batch or 32})
    return res


@torch.no_grad()
def export_vae(model, export: Path) -> None:
    # SD's scaling_factor: 1 / std of latents, so scaled latents have unit variance
    x = D.vae_batch(np.random.default_rng(999), 256)
    z = model.encode(x).latent_dist.mode()
    model.register_to_config(scaling_factor=float(1.0 / z.std()))
    _save_fp16(model, export / "vae")


COMPONENTS = {"tokenizer": train_tokenizer, "clip": train_clip, "vae": train_vae}


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


def run(args) -> int:
    torch.set_num_threads(args.threads)
    args.export = Path(args.export or bundled_dir("shapes-64"))
    args.export.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items() if k != "func"}, indent=2))
    _write_model_index(args.export)
    for name in args.only or ORDER:
        if name not in COMPONENTS:
            print(f"[{name}] not implemented yet, skipped", flush=True)
            continue
        t = time.time()
        print(f"[{name}] training for up to {args.minutes} min", flush=True)
        res = COMPONENTS[name](args)
        print(f"[{name}] done in {(time.time() - t) / 60:.1f} min: {res}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
