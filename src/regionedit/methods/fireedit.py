"""Seed 003, FireEdit ("Fine-grained Instruction-based Image Editing via Region-aware Vision Language Model"):
a region-aware vision-language condition, time-aware injection and hybrid visual cross-attention over a *frozen*
InstructPix2Pix UNet.

* **Region-aware mixed-modal encoding**: a miniature VL encoder (:class:`~.fireedit_modules.MixedModalEncoder`, a
  ``transformers.BertModel`` fed ``inputs_embeds``) reads ``[image tokens, region tokens, text tokens]``: the frozen
  CLIP's patch features of the source (pooled, projected), one token per region proposal (CLIP features pooled in
  its mask + a box embedding + the "region" token type), and the frozen text encoder's states of the instruction.
  Proposals come from a localizer (by default the general Editor's region over the model folder's learned region
  predictor, without priors: :meth:`~regionedit.pipeline.Editor.find_region`; its region and that region's box)
  or a given mask; in training, from the sample (the true
  region, its jittered box, random distractor boxes, shuffled). Nothing at inference reads ground truth. The
  encoder's states, projected to the UNet's ``cross_attention_dim``, replace the text encoder's states as the UNet's
  ``encoder_hidden_states``.
* **Time-Aware Target Injection** (TATI): per-token gates ``w(t) = sigmoid(MLP(time_proj(t)))`` mix the condition
  with the null condition, ``w(t) c + (1 - w(t)) c_null``, at every denoising step.
* **Hybrid Visual Cross Attention** (HVCA): after every attention block of the UNet (forward hooks; the backbone's
  code is untouched) a zero-initialised cross-attention to the source's frozen CLIP patch tokens (global semantics)
  and the VAE encoder's feature map one octave finer than that UNet level (local detail).

Frozen and never saved: the UNet ``<model>/unet_ip2p``, VAE, CLIP, text encoder, scheduler, localizer. Trained
(:meth:`FireEdit.trainable_parameters`): the VL encoder with its input / region / output projections, TATI and
HVCA. No LoRA: the UNet stays frozen. ``c_null`` is fixed: the text encoder's states of "" at the text positions,
0 elsewhere (what InstructPix2Pix's guidance calls "no text").

Sampling (our reading): DDIM on the folder's scheduler config with InstructPix2Pix's three-branch guidance (condition
+ image, null + image, null + no image; HVCA is off with the image); ``compose=True`` pastes the result into the
source inside the region (bit-identical outside).

>>> from regionedit.methods import FireEdit
>>> m = FireEdit("shapes-64")                                    # fresh modules on the bundled frozen UNet
>>> out = m(image, "make the red circle blue", seed=0)           # region proposals from the learned localizer
>>> m.save_pretrained("runs/fireedit/export"); m2 = FireEdit.from_pretrained("runs/fireedit/export")
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .trainable import TrainableMethod
from .fireedit_modules import (FireEditConfig, HybridVisualCrossAttention, MixedModalEncoder, Proposals,
                               TimeAwareTargetInjection, fold, inference_proposals, inject, local_scale,
                               training_proposals, unet_attention_sites, vae_pyramid_channels)

WEIGHTS_NAME = "fireedit.safetensors"


@dataclasses.dataclass
class SourceFeatures:
    """The frozen encoders' view of source images (B of them): ``latents`` (B, 4, h, w) unscaled VAE mode (as
    InstructPix2Pix concatenates them); ``maps`` {size: (B, C, size, size)} the VAE encoder's feature pyramid;
    ``patches`` (B, N, D) CLIP patch features on a ``grid`` (gh, gw)."""

    latents: torch.Tensor
    maps: dict[int, torch.Tensor]
    patches: torch.Tensor
    grid: tuple[int, int]

    def repeat(self, n: int) -> "SourceFeatures":
        return SourceFeatures(self.latents.repeat(n, 1, 1, 1), {k: v.repeat(n, 1, 1, 1) for k, v in self.maps.items()},
                              self.patches.repeat(n, 1, 1), self.grid)


@dataclasses.dataclass
class FireEditOutput:
    """image: (H, W, 3) uint8 edited image; region: (H, W) float32 in {0, 1}, the region the proposals came from
    (the whole image when none); region_from: "localizer", "given" or "whole image"."""

    image: np.ndarray
    region: np.ndarray
    region_from: str


class FireEdit(TrainableMethod):
    """Seed 003 over the frozen models of a model folder with ``unet_ip2p`` (see the module docstring). ``model``: a
    :class:`regionedit.models.Models` or what :func:`regionedit.models.load` takes; ``localizer``: ``"auto"`` (the
    general Editor's region over the folder's learned region predictor when it has one, without priors: the region
    the ``region-learned`` evaluation row edits; loaded on first use), None, or any ``(image, text) -> map |
    (map, presence)``."""

    WEIGHTS_NAME = WEIGHTS_NAME
    SEED_PAPER = "003 FireEdit"
    CONFIG_CLASS = FireEditConfig
    INFERENCE_SETTINGS = frozenset({"steps", "guidance_scale", "image_guidance_scale", "mask_threshold"})
    TRAIN_COMMAND = "regionedit train fireedit"

    def __init__(self, model="shapes-64", config: FireEditConfig | None = None, localizer="auto"):
        from regionedit import models as M
        from regionedit.methods.region_in_context import load_ip2p_unet

        self.config = cfg = config or FireEditConfig()
        self.models = M.load(str(model)) if isinstance(model, (str, Path)) else model
        self.base_model = str(self.models.model_id)
        m = self.models
        self.unet = load_ip2p_unet(Path(m.location) / cfg.unet_subfolder, m.device, m.dtype)  # frozen backbone
        self.vae, self.text_encoder, self.tokenizer, self.clip = m.vae, m.text_encoder, m.tokenizer, m.clip
        self.vae_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.native_size = int(self.unet.config.sample_size) * self.vae_factor
        cross = int(self.unet.config.cross_attention_dim)
        text_dim = int(self.text_encoder.config.hidden_size)
        if text_dim != cross:
            raise ValueError(f"the text encoder's width ({text_dim}) is not the UNet's cross_attention_dim ({cross}): "
                             f"{cfg.unet_subfolder} must be conditioned by this folder's text encoder")
        vc = self.clip.config.vision_config
        self.clip_grid = (int(vc.image_size) // int(vc.patch_size),) * 2
        clip_dim = int(self.clip.config.projection_dim)
        self.pyramid = vae_pyramid_channels(self.vae.config, self.native_size)
        self.sites = unet_attention_sites(self.unet)
        g = torch.Generator().manual_seed(cfg.init_seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
            enc = MixedModalEncoder(clip_dim, text_dim, cross, int(self.tokenizer.model_max_length),
                                    dataclasses.replace(cfg, vl_image_grid=min(cfg.vl_image_grid, self.clip_grid[0])))
            # every trainable module of the method, in one ModuleDict (what is saved and trained)
            net = {"encoder": enc}
            if cfg.use_tati:
                net["tati"] = TimeAwareTargetInjection(int(self.unet.config.block_out_channels[0]), enc.length,
                                                       cfg.tati_hidden, cfg.tati_init_bias)
            if cfg.use_hvca:
                net["hvca"] = nn.ModuleList(
                    HybridVisualCrossAttention(ch, clip_dim, self._local(size)[1], size, cfg.hvca_heads)
                    for _, _, ch, size in self.sites)
            self.net = nn.ModuleDict(net).to(m.device, m.dtype)
        self._localizer = localizer
        self._null: torch.Tensor | None = None
        self._ctx: dict | None = None
        self.last_hvca: list[tuple[int, int]] = []  # (UNet level size, VAE map size) of each HVCA of the last call
        self._hooks = [mod.register_forward_hook(self._hook(i)) for i, (_, mod, _, _) in enumerate(self.sites)]

    def _local(self, size: int) -> tuple[int, int]:
        """(VAE map size, local_dim) a UNet level of ``size`` reads (:func:`local_scale`)."""
        s, k = local_scale(self.pyramid, size)
        return s, self.pyramid[s] * k * k

    # -- the hooks into the frozen attention blocks ----------------------------------------------------------
    def _hook(self, index: int):
        def fn(module, args, output):
            ctx = self._ctx
            if ctx is None or ctx["source"] is None or "hvca" not in self.net:
                return None
            h = output[0] if isinstance(output, tuple) else output.sample
            size = self.sites[index][3]
            s, k = local_scale(self.pyramid, size)
            src = ctx["source"]
            local = fold(src.maps[s], size, k)
            delta = self.net["hvca"][index](h, src.patches, local)
            self.last_hvca.append((size, s))
            h = h + ctx["keep"].view(-1, 1, 1, 1).to(h.dtype) * delta
            if isinstance(output, tuple):
                return (h, *output[1:])
            return dataclasses.replace(output, sample=h) if dataclasses.is_dataclass(output) else type(output)(sample=h)

        return fn

    # -- frozen encoders -------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_source(self, images: torch.Tensor) -> SourceFeatures:
        """(B, 3, S, S) in [-1, 1] -> :class:`SourceFeatures` (one VAE pass with its pyramid captured, one CLIP pass)."""
        from regionedit.localize.features import clip_pixels, image_features

        vae, maps = self.vae, {}
        enc = vae.encoder
        mods = [enc.conv_in, *enc.down_blocks]
        hooks = [mod.register_forward_hook(lambda mod, a, out: maps.__setitem__(out.shape[-1], out)) for mod in mods]
        try:
            lat = vae.encode(images.to(vae.device, vae.dtype)).latent_dist.mode()
        finally:
            for h in hooks:
                h.remove()
        proc = self.models.clip_processor
        px = clip_pixels(images.to(self.clip.device, self.clip.dtype), proc.crop_size["height"], proc.image_mean,
                         proc.image_std)
        patches, _ = image_features(self.clip, px)
        return SourceFeatures(lat, maps, patches, self.clip_grid)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """The frozen text encoder's states (B, L, C) as the InstructPix2Pix pipeline computes them (L = the
        tokenizer's ``model_max_length``)."""
        tok = self.tokenizer(list(texts), padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt")
        return self.text_encoder(tok.input_ids.to(self.text_encoder.device))[0]

    # -- the three parts of the method ------------------------------------------------------------------------
    def condition(self, source: SourceFeatures, text: torch.Tensor, proposals: Proposals | None) -> torch.Tensor:
        """The region-aware condition (B, T, cross_dim): :class:`~.fireedit_modules.MixedModalEncoder` over the
        source's CLIP patches, the proposals (ignored without region tokens) and the instruction's states."""
        enc = self.net["encoder"]
        return enc(source.patches, source.grid, text, proposals if enc.regions is not None else None)[1]

    def null_condition(self, batch: int) -> torch.Tensor:
        """``c_null`` (B, T, cross_dim): the text encoder's states of "" at the text positions, 0 elsewhere."""
        if self._null is None:
            enc = self.net["encoder"]
            text = self.encode_text([""])
            pad = torch.zeros(1, enc.length - enc.text_len, text.shape[-1], dtype=text.dtype, device=text.device)
            self._null = torch.cat([pad, text], 1)
        return self._null.expand(batch, -1, -1)

    def tati_weights(self, timesteps: torch.Tensor) -> torch.Tensor:
        """TATI's per-token weights w(t) (B, T, 1) in (0, 1) for timesteps (B,); all 1 without TATI (ablation)."""
        t = timesteps.reshape(-1).to(self.unet.device)
        if "tati" not in self.net:
            return torch.ones(t.shape[0], self.net["encoder"].length, 1, device=t.device)
        emb = self.unet.time_proj(t).to(next(self.net.parameters()).dtype)
        return self.net["tati"](emb)

    def denoise(self, latents: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor,
                source: SourceFeatures | None, keep: torch.Tensor | None = None) -> torch.Tensor:
        """The frozen UNet's prediction (B, 4, h, w) with HVCA on ``source``'s features. latents: (B, 8, h, w) noisy
        latents + source latents; timesteps: (B,); condition: (B, T, cross_dim); keep: (B,) in {0, 1}, HVCA's
        weight per sample (0: the image is dropped; default 1)."""
        keep = torch.ones(latents.shape[0]) if keep is None else keep
        self.last_hvca = []
        self._ctx = {"source": source, "keep": keep.to(latents.device)}
        try:
            return self.unet(latents, timesteps, encoder_hidden_states=condition).sample
        finally:
            self._ctx = None

    def training_loss(self, source: torch.Tensor, target: torch.Tensor, region: torch.Tensor, instructions: list[str],
                      generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        """InstructPix2Pix's denoising loss through FireEdit's condition on one batch.

        source, target: (B, 3, S, S) in [-1, 1] at the native size; region: (B, 1, S, S) in [0, 1], the true region
        (it only builds the proposals); instructions: B strings. Draws the proposals
        (:func:`~.fireedit_modules.training_proposals`), the guidance dropout, the noise and the timesteps from
        ``generator``, in that order. Returns (loss, logs)."""
        cfg, sched = self.config, self.models.scheduler
        b = source.shape[0]
        src = self.encode_source(source)
        with torch.no_grad():
            tgt = self.vae.encode(target.to(self.vae.device, self.vae.dtype)).latent_dist.mode() * self.vae.config.scaling_factor
        proposals = training_proposals(region, cfg.num_regions, generator, cfg.box_jitter, cfg.distractor_prob,
                                       cfg.no_region_prob)
        r = torch.rand(b, generator=generator)
        d = cfg.cfg_drop
        drop_text = (r < d) | ((r >= 2 * d) & (r < 3 * d))
        drop_image = (r >= d) & (r < 3 * d)
        noise = torch.randn(tgt.shape, generator=generator).to(tgt)
        t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=generator).to(tgt.device)
        c = self.condition(src, self.encode_text(instructions), proposals)
        null = self.null_condition(b)
        w = self.tati_weights(t)
        cond = torch.where(drop_text.view(-1, 1, 1).to(c.device), null, inject(c, null, w))
        keep = (~drop_image).float().to(tgt.device)
        noisy = sched.add_noise(tgt, noise, t)
        pred = self.denoise(torch.cat([noisy, src.latents * keep.view(-1, 1, 1, 1)], 1), t, cond, src, keep)
        kind = sched.config.prediction_type
        goal = {"epsilon": noise, "sample": tgt}.get(kind)
        goal = sched.get_velocity(tgt, noise, t) if goal is None else goal
        loss = F.mse_loss(pred.float(), goal.float())
        return loss, {"loss": loss.item(), "tati_w": w.mean().item(), "proposals": proposals.valid.float().sum(1).mean().item()}

    # -- editing ----------------------------------------------------------------------------------------------
    @property
    def localizer(self):
        """The localizer that proposes regions (resolved on first use when ``"auto"``); None when there is none."""
        if isinstance(self._localizer, str) and self._localizer == "auto":
            pred_dir = Path(self.models.location) / "region_predictor"
            self._localizer = None
            if (pred_dir / "config.json").is_file():
                from regionedit.pipeline import Editor

                # the general Editor's decision over the learned region predictor, without a plugin's priors: the
                # thresholds calibrated for the learned parts alone and the presence gate on edits of an existing
                # object ("add" keeps a region); the region the region-learned row edits
                editor = Editor.from_models(self.models, priors=False)
                self._localizer = lambda image, instruction: editor.find_region(np.asarray(image), instruction)[0]
        return self._localizer

    def locate(self, image: np.ndarray, instruction: str) -> np.ndarray | None:
        """The localizer's region (H, W) bool, or None without a localizer. The default ("auto") localizer returns
        its decided region; a given one may return a map (kept where >= ``mask_threshold``) or ``(map, presence)``
        (an empty region when presence < 0.5)."""
        loc = self.localizer
        if loc is None:
            return None
        res = loc(image, instruction)
        prob, presence = res if isinstance(res, tuple) else (res, None)
        region = np.asarray(prob, dtype=np.float32) >= self.config.mask_threshold
        return region & (presence is None or presence >= 0.5)

    @torch.no_grad()
    def __call__(self, image: np.ndarray, instruction: str, mask: np.ndarray | None = None, seed: int = 0,
                 steps: int | None = None, guidance_scale: float | None = None,
                 image_guidance_scale: float | None = None, compose: bool = False) -> FireEditOutput:
        """Edit ``image`` ((H, W, 3) uint8 RGB) by ``instruction``. ``mask``: (H, W) region in [0, 1] / bool whose
        proposals to use instead of the localizer's. ``compose``: paste the result into the source inside the region
        (pixels outside bit-identical). Deterministic for a given ``seed``."""
        from regionedit.methods.descriptive_edit import _resize, images_to_tensor
        from regionedit.methods.region_context import prepare_mask

        # 1. check inputs
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError("instruction must be a non-empty string")
        if mask is not None and np.asarray(mask).shape != img.shape[:2]:
            raise ValueError(f"mask has shape {np.asarray(mask).shape}, the image {img.shape[:2]}; give one value per pixel")
        cfg = self.config
        steps = cfg.steps if steps is None else int(steps)
        g_text = cfg.guidance_scale if guidance_scale is None else float(guidance_scale)
        g_image = cfg.image_guidance_scale if image_guidance_scale is None else float(image_guidance_scale)
        # 2. the region the proposals come from (never ground truth)
        if mask is not None:
            region, region_from = np.asarray(mask, dtype=np.float32) >= 0.5, "given"
        elif cfg.use_region_tokens or compose:
            region = self.locate(img, instruction)
            region_from = "whole image" if region is None else "localizer"
        else:
            region, region_from = None, "whole image"
        # 3. the frozen encoders on the source, at the native size
        s = self.native_size
        src = self.encode_source(images_to_tensor([img], s))
        # 4. the region-aware condition and the null condition
        proposals = inference_proposals(None if region is None else prepare_mask(region, img.shape[:2], s),
                                        cfg.num_regions, s)
        c = self.condition(src, self.encode_text([instruction]), proposals)
        null = self.null_condition(1)
        # 5. denoising: DDIM, InstructPix2Pix's three branches, TATI per step, HVCA with the image
        from diffusers import DDIMScheduler

        sched = DDIMScheduler.from_config(self.models.scheduler.config)
        sched.set_timesteps(steps)
        gen = torch.Generator().manual_seed(int(seed))
        lat = torch.randn(src.latents.shape, generator=gen).to(src.latents) * sched.init_noise_sigma
        image_in = torch.cat([src.latents, src.latents, torch.zeros_like(src.latents)])
        src3, keep = src.repeat(3), torch.tensor([1.0, 1.0, 0.0])
        for t in sched.timesteps:
            cond = inject(c, null, self.tati_weights(t.view(1)))
            x = torch.cat([sched.scale_model_input(lat, t).repeat(3, 1, 1, 1), image_in], 1)
            e_c, e_i, e_u = self.denoise(x, t.repeat(3), torch.cat([cond, null, null]), src3, keep).chunk(3)
            lat = sched.step(e_u + g_text * (e_c - e_i) + g_image * (e_i - e_u), t, lat).prev_sample
        # 6. decode, back to the input size, compose
        out = self.vae.decode(lat / self.vae.config.scaling_factor).sample.clamp(-1, 1).float()
        if not bool(torch.isfinite(out).all()):
            raise RuntimeError("the edit produced non-finite values; the FireEdit or base weights are probably corrupted")
        arr = _resize(((out[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy(),
                      img.shape[:2])
        region_px = (np.ones(img.shape[:2], np.float32) if region is None else region.astype(np.float32))
        if compose:
            from regionedit.compose import compose as paste

            arr = paste(img, arr, region_px, feather_px=0, method="hard")
        return FireEditOutput(image=arr, region=region_px, region_from=region_from)

    # -- saving / loading ----------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, folder: str | Path, model=None, localizer="auto", **overrides) -> "FireEdit":
        """Load a folder written by :meth:`save_pretrained`. ``model``: the frozen base (default: the ``base_model``
        its ``config.json`` names); ``overrides``: inference settings to change (``steps``, ``guidance_scale``,
        ``image_guidance_scale``, ``mask_threshold``)."""
        return super().from_pretrained(folder, base=model, overrides=overrides, localizer=localizer)

    @classmethod
    def _from_saved(cls, base, config, localizer="auto"):
        return cls(base, config, localizer)

    def _model_card(self, training: dict | None, quality: dict | None) -> str:
        cfg = self.config
        lines = ["# FireEdit (seed 003)", "",
                 "A region-aware mixed-modal VL encoder (image, region and text tokens) conditioning a frozen",
                 "InstructPix2Pix UNet, with Time-Aware Target Injection and Hybrid Visual Cross Attention. The base",
                 "models are not included; they are loaded by name or path. Described in docs/methods/fireedit.md.", "",
                 f"- base model folder: `{self.base_model}` (UNet `{cfg.unet_subfolder}`, frozen)",
                 f"- VL encoder: BertModel, {cfg.vl_layers} layers, width {cfg.vl_dim}, "
                 f"{self.net['encoder'].length} tokens; region slots {cfg.num_regions}",
                 f"- HVCA sites: {len(self.sites) if cfg.use_hvca else 0}; trainable parameters: {self.num_trainable():,}",
                 f"- ablation switches: region tokens {cfg.use_region_tokens}, TATI {cfg.use_tati}, HVCA {cfg.use_hvca}",
                 f"- inference defaults: {cfg.steps} DDIM steps, text guidance {cfg.guidance_scale}, image guidance "
                 f"{cfg.image_guidance_scale}", "", "## Training", ""]
        lines += ([f"- {k}: {v}" for k, v in training.items()] if training else
                  ["Untrained: HVCA and the condition's output projection are zero (the frozen UNet, conditioned on "
                   "the instruction's text states at the text positions)."])
        lines += ["", "## Measured quality", ""]
        lines += ([f"- {k}: {v}" for k, v in quality.items()] if quality else
                  ["Not measured yet (`regionedit eval --methods fireedit`)."])
        lines += ["", "Load: `regionedit.methods.FireEdit.from_pretrained(folder)`.", ""]
        return "\n".join(lines)

