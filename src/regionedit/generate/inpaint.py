"""Region-conditioned generation with a frozen latent diffusion model (seed 001, Appendix A).

:class:`InpaintGenerator` wraps any diffusers SD-style checkpoint (VAE, CLIP text encoder, 9-channel
inpainting UNet or 4-channel text-to-image UNet, DDIM-family scheduler) behind one call:
``(image, region, prompts) -> image``. It implements the DDIM loop of Appendix A with **latent
blending** (eq. 23): after every step the latents outside the region are replaced by the source latents
noised to the same level, so generation only shapes the region while staying coherent with its context.
With a 9-channel UNet the mask and masked-image latents are also fed as extra channels (eq. 13).

Images are (B, 3, H, W) float in [-1, 1] at the model's native size (64 for shapes-64, 512 for SD);
regions (B, 1, H, W) in [0, 1], 1 = generate.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F


@dataclasses.dataclass
class InpaintConfig:
    steps: int = 20  # DDIM steps
    guidance: float = 4.0  # classifier-free guidance scale (1 = off)
    blend: bool = True  # latent blending outside the region (Appendix A, eq. 23)
    negative_prompt: str = ""  # unconditional prompt for guidance


class InpaintGenerator:
    """The frozen generator. ``models`` is a :class:`regionedit.models.Models` (or anything with
    ``vae``, ``text_encoder``, ``tokenizer``, ``scheduler`` and ``unet_inpaint`` / ``unet``)."""

    def __init__(self, models, config: InpaintConfig | None = None, use_inpaint_unet: bool = True):
        self.m = models
        self.config = config or InpaintConfig()
        self.unet = models.unet_inpaint if use_inpaint_unet else models.unet
        self.vae = models.vae
        self.scale = float(self.vae.config.scaling_factor)
        self.down = 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        """Pixel size the generator was trained at (UNet sample size x VAE downsampling)."""
        return int(self.unet.config.sample_size) * self.down

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        tok = self.m.tokenizer(prompts, padding="max_length", max_length=self.m.tokenizer.model_max_length,
                               truncation=True, return_tensors="pt")
        return self.m.text_encoder(tok.input_ids.to(self.vae.device))[0]

    @torch.no_grad()
    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> scaled latents (B, 4, H/f, W/f) (distribution mode)."""
        return self.vae.encode(image).latent_dist.mode() * self.scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.scale).sample.clamp(-1, 1)

    @torch.no_grad()
    def __call__(
        self,
        image: torch.Tensor,
        region: torch.Tensor,
        prompts: list[str],
        generator: torch.Generator | list[torch.Generator] | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        return_latents: bool = False,
        callback_on_step_end=None,
    ):
        """Fill ``region`` of ``image`` following ``prompts``: returns (B, 3, H, W) in [-1, 1]
        (and the final scaled latents (B, 4, h, w) when ``return_latents``). ``generator``: one for the
        batch's noise, or a list of B (image i's noise from generator i, as when drawn alone).
        ``callback_on_step_end(generator, step_index, timestep, {"latents": ...}) -> dict`` is called after each step
        (after latent blending); a returned ``"latents"`` replaces them (diffusers' convention)."""
        cfg = self.config
        steps = steps or cfg.steps
        guidance = cfg.guidance if guidance is None else guidance
        b = image.shape[0]
        dev, dt = self.vae.device, self.vae.dtype
        image, region = image.to(dev, dt), region.to(dev, dt)  # the models' precision / device (fp32 CPU by default)
        if len(prompts) != b:
            raise ValueError(f"got {len(prompts)} prompts for {b} images; pass one prompt per image")
        # 1. encode the source and the region at latent resolution
        src_lat = self.encode(image)  # (B, 4, h, w)
        h, w = src_lat.shape[-2:]
        m_lat = F.interpolate(region, size=(h, w))  # nearest, as the model was trained
        m_blend = F.adaptive_max_pool2d(region, (h, w))  # any touched latent pixel is regenerated
        masked_lat = self.encode(image * (region < 0.5))
        # 2. text conditioning (+ unconditional for classifier-free guidance)
        cond = self.encode_prompts(prompts)
        use_cfg = guidance > 1.0
        if use_cfg:
            cond = torch.cat([self.encode_prompts([cfg.negative_prompt] * b), cond])
        # 3. timesteps and initial noise
        sched = self.m.scheduler
        sched.set_timesteps(steps)
        if isinstance(generator, (list, tuple)):
            if len(generator) != b:
                raise ValueError(f"got {len(generator)} generators for {b} images; pass one per image (or one)")
            noise = torch.cat([torch.randn((1, *src_lat.shape[1:]), generator=g) for g in generator])
        else:
            noise = torch.randn(src_lat.shape, generator=generator)
        noise = noise.to(dev, dt)  # drawn on the CPU in float32: the same draw on every device and precision
        lat = noise * sched.init_noise_sigma
        nine = self.unet.config.in_channels == 9
        # 4. denoising loop with latent blending (Appendix A)
        for i, t in enumerate(sched.timesteps):
            inp = sched.scale_model_input(lat, t)
            if nine:
                inp = torch.cat([inp, m_lat, masked_lat], 1)
            inp = torch.cat([inp] * 2) if use_cfg else inp
            pred = self.unet(inp, t, encoder_hidden_states=cond).sample
            if use_cfg:
                u, c = pred.chunk(2)
                pred = u + guidance * (c - u)
            lat = sched.step(pred, t, lat).prev_sample
            if cfg.blend:
                if i + 1 < len(sched.timesteps):
                    t_next = sched.timesteps[i + 1]
                    src_t = sched.add_noise(src_lat, noise, t_next.reshape(1).repeat(b))
                else:
                    src_t = src_lat
                lat = m_blend * lat + (1 - m_blend) * src_t
            if callback_on_step_end is not None:  # diffusers' convention: (pipe, step, timestep, kwargs) -> dict
                changed = callback_on_step_end(self, i, t, {"latents": lat}) or {}
                lat = changed.get("latents", lat)
        # 5. decode
        out = self.decode(lat).float().cpu()
        if not bool(torch.isfinite(out).all()):
            raise RuntimeError(
                "the generator produced non-finite values (NaN or inf) in the generated patch; the model's "
                "weights are probably corrupted (NaN/inf): check the weights, or re-download / re-export the model")
        return (out, lat) if return_latents else out
