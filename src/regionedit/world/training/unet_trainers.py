"""The bundled diffusion UNets (``--only unet``, ``unet_inpaint``, ``unet_ip2p``): text-to-image, inpainting
initialised from it (as SD-inpainting), and the InstructPix2Pix baseline, on a frozen VAE and text encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from regionedit.models import configs as C
from regionedit.training.common import EMA, Run, earlier_record, train_loop
from regionedit.world.training import world_data as D
from regionedit.world.training.component_common import adamw, cosine_lr, load_tokenizer, save_fp16, write_state


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


def _ip2p_from_inpaint(export: Path) -> torch.nn.Module:
    """An 8-channel InstructPix2Pix UNet from ``export/unet_inpaint`` (9 channels: noisy latents, mask, masked-image
    latents): conv_in keeps the noisy-latent channels and the masked-image ones, the latter times the VAE's scaling
    factor (InstructPix2Pix feeds the source's *unscaled* latents, inpainting scaled ones), and drops the mask channel
    (a mask of 0 everywhere: keep every pixel). At initialisation it is the inpainting UNet asked to keep the whole
    source, which it reproduces; fine-tuning then teaches it the edit."""
    from diffusers import UNet2DConditionModel

    src = export / "unet_inpaint"
    if not (src / "config.json").exists():
        raise SystemExit(f"--ip2p-init unet_inpaint: no inpainting UNet in {src}; train it first (--only unet_inpaint)")
    inp = UNet2DConditionModel.from_pretrained(src, torch_dtype=torch.float32)
    if inp.config.in_channels != 2 * C.LATENT_CHANNELS + 1:
        raise SystemExit(f"{src} has {inp.config.in_channels} input channels, not {2 * C.LATENT_CHANNELS + 1}")
    sf = json.loads((export / "vae" / "config.json").read_text())["scaling_factor"]
    sd = inp.state_dict()
    w, k = sd["conv_in.weight"], C.LATENT_CHANNELS
    sd["conv_in.weight"] = torch.cat([w[:, :k], w[:, k + 1:] * sf], dim=1)
    model = C.build_unet(2 * k)
    model.load_state_dict(sd)
    return model


def _init_unet(export: Path, folder: Path, run: Run, in_channels: int, init: str = "auto"):
    """The UNet a run starts from: the shipped weights in ``folder`` when there is no checkpoint yet
    (training continues from what we ship), else a fresh model; 8/9-channel UNets start, as
    SD-inpainting and InstructPix2Pix did, from the text-to-image UNet with zero-initialised extra input
    channels. ``init="unet_inpaint"`` (unet_ip2p only): a new run starts from the inpainting UNet instead
    (:func:`_ip2p_from_inpaint`); ``init="unet"``: from the text-to-image UNet even where weights are shipped."""
    from diffusers import UNet2DConditionModel

    if init == "unet_inpaint" and not run.exists():
        return _ip2p_from_inpaint(export)
    if init == "auto" and (folder / "config.json").exists() and not run.exists():
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


def _train_unet_component(args, name: str, in_channels: int, seed_offset: int, make_step, extra_state=None,
                          conv_in_lr_scale: float = 1.0, record_extra: dict | None = None) -> dict:
    """Shared setup of the three UNet trainers: frozen VAE and text encoder, the UNet (see
    :func:`_init_unet`), AdamW with warm-up + cosine, EMA 0.999, resumable loop, fp16 export of the EMA
    weights. ``make_step(model, vae, text, tok, sched, rng)`` returns the per-step function.
    ``conv_in_lr_scale``: learning-rate multiplier of the input convolution (the layer whose zero-initialised
    extra channels must learn to read the conditioning image; 1 = one learning rate for all); ``record_extra``:
    more recipe entries for the folder's training record (the model card)."""
    tok = load_tokenizer(args.export)
    vae, text = _frozen_vae_and_text(args.export)
    folder = args.export / name
    run = Run.for_args(args.out / name, args)
    # a run that starts from the shipped weights keeps their record as its earlier training (the card shows
    # both); the record travels in the run state, so resumes keep it
    init = getattr(args, "ip2p_init", "auto") if name == "unet_ip2p" else "auto"
    lr = float(getattr(args, "lr", None) or 3e-4)
    # a run from another start than the shipped weights has no earlier training of its own
    earlier = earlier_record(run, folder) if init == "auto" else (run.load().get("earlier_training") if run.exists() else None)
    model = _init_unet(args.export, folder, run, in_channels, init)
    if conv_in_lr_scale == 1.0:
        opt = adamw(model, lr, 0.01)
    else:
        conv_in = [p for n, p in model.named_parameters() if n.startswith("conv_in.")]
        rest = [p for n, p in model.named_parameters() if not n.startswith("conv_in.")]
        opt = torch.optim.AdamW([{"params": rest}, {"params": conv_in, "lr_scale": conv_in_lr_scale}], lr=lr,
                                weight_decay=0.01)
    if run.exists():  # the optimizer's groups must match the checkpoint's (load_state_dict would fail obscurely)
        groups = run.load()["optimizer"]["param_groups"]
        was = max(g.get("lr_scale", 1.0) for g in groups)
        if len(groups) != len(opt.param_groups) or was != conv_in_lr_scale:
            raise SystemExit(f"{run.dir}: this run was trained with --conv-in-lr-scale {was:g}, not {conv_in_lr_scale:g}; "
                             f"continue it with --conv-in-lr-scale {was:g}, or start a new run with another --out")
    ema = EMA(model, 0.999)
    sched = C.build_scheduler()
    rng = np.random.default_rng(args.seed + seed_offset)
    step_fn = make_step(model, vae, text, tok, sched, rng)
    res = train_loop(run, model, opt, step_fn, args.minutes, args.max_steps, args.seed, ema=ema,
                     extra_state=lambda: {**(extra_state() if extra_state else {}), "earlier_training": earlier},
                     lr_at=cosine_lr(lr, 200, 20000))
    save_fp16(ema.model, folder)
    record = {"batch": args.batch or 64, "ema": 0.999, **({"earlier_training": earlier} if earlier else {}),
              **({"conv_in_lr_scale": conv_in_lr_scale} if conv_in_lr_scale != 1.0 else {}),
              **({"lr": lr} if lr != 3e-4 else {}), **({"init": init} if init != "auto" else {}), **(record_extra or {})}
    write_state(folder, name, res["step"], res["seconds"], args.seed, record)
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


def edit_cell_weights(masks: list[np.ndarray], weight: float, factor: int = 4) -> torch.Tensor:
    """Loss weights (B, 1, H / factor, W / factor) float32 on the latent grid: ``weight`` on every cell that holds a
    pixel of the edit's mask ((H, W) bool, True = changed), 1 elsewhere."""
    m = torch.from_numpy(np.stack([np.asarray(x, dtype=np.float32) for x in masks]))[:, None]
    return 1.0 + (weight - 1.0) * torch.nn.functional.max_pool2d(m, factor)


def train_unet_ip2p(args) -> dict:
    """InstructPix2Pix baseline (issue: evaluation baselines): an 8-channel UNet (noisy latents + source
    latents) fine-tuned on world *edit pairs* from the text-to-image UNet, conditioned on the instruction,
    as diffusers' train_instruct_pix2pix example does (5% image, 5% text, 5% both dropped for CFG).
    ``--ip2p-region-weight W`` (default 1: that example's uniform loss): the latent cells the edit changes (the
    sample's ground-truth mask, max-pooled to the latent grid; training only) weigh W in the loss, as the
    text-to-image UNet weighs object cells: started from the inpainting UNet the rest is already right, and the
    few edited cells are what is left to learn."""
    from regionedit.world import sample_edit

    run = Run.for_args(args.out / "unet_ip2p", args)
    counter = {"i": run.load().get("counter", 0) if run.exists() else 0}
    region_weight = float(getattr(args, "ip2p_region_weight", 1.0))
    if run.exists() and run.load().get("region_weight", 1.0) != region_weight:
        was = run.load().get("region_weight", 1.0)
        raise SystemExit(f"{run.dir}: this run was trained with --ip2p-region-weight {was:g}, not {region_weight:g}; "
                         f"continue it with --ip2p-region-weight {was:g}, or start a new run with another --out")

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
            # the latent cells the edit changes weigh region_weight (training-time ground truth only)
            w = None if region_weight == 1.0 else edit_cell_weights([s.mask for s in samples], region_weight)
            loss = _diffusion_loss(model, sched, lat, src_lat * keep_img, cond, gen, region_weight=w)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            return {"loss": loss.item()}

        return step_fn

    return _train_unet_component(args, "unet_ip2p", 8, 5, make_step,
                                 extra_state=lambda: {"counter": counter["i"], "region_weight": region_weight},
                                 conv_in_lr_scale=getattr(args, "conv_in_lr_scale", 1.0),
                                 record_extra={"region_weight": region_weight} if region_weight != 1.0 else None)
