"""Seed 000, "Region in Context" (arXiv 2510.16772): a region seen in the context of its whole image, aligned
with a description of the region and of the scene, steering an InstructPix2Pix-style denoiser.

The pieces and where the seed has them (the seed text is ``../shared/seeds/000_ef7dcbac429b157f.txt``; "Sec."
and "Eq." below are the paper's, as that summary cites them):

``RegionEncoder`` (the "Region-CLIP", Method Summary)
    The region embedding ``e_r`` is CLIP's image embedding of the region (a square crop around it, default) or
    CLIP's patch features pooled inside the region mask (``region_embedding="pool"``), and the full image's
    tokens ``F`` are CLIP's patch features of the whole image, projected into CLIP's joint space. CLIP stays
    frozen.
``GatedContextAttention`` (Sec. 3.2.2, Eqs. 14-15)
    The region embedding is the *query*, the full image's tokens the keys and values ("which part of the full
    image is relevant to me?"): ``h = MHA(q = e~_r, k = v = F)``, ``g = sigmoid(W_g [e~_r; h] + b_g)`` per channel
    (``gate="scalar"``: one learned logit), ``z = e~_r + g * h``. ``e~_r = W_r e_r`` starts as the identity, so at
    initialisation with ``g = 0`` the region-in-context embedding is CLIP's own region embedding. ``gate_off``
    is the seed's ablation (Table 3, "First 3 experiments" 1): ``g = 0``, ``z = e~_r``, no context.
``contrastive_loss`` / ``region_loss`` / ``scene_loss`` (Sec. 3.2, Eqs. 8-11)
    Symmetric InfoNCE (Eq. 11) between ``z`` and the CLIP text embedding of the region description
    (``L_region``), and between the scene embedding ``s = W_s e_img`` and the text embedding of the whole-image
    description (``L_global``). The seed computes ``L_global`` in a fine-tuned BLIP's space (stage 1); no BLIP
    is bundled, so here it is CLIP's space with a learned linear scene head ``W_s`` (identity at init) - the
    substitute is named in the model card.
``RegionTokens`` + the InstructPix2Pix denoiser (Key Results "integration with InstructPix2Pix"; Architecture
    Onboarding "component map")
    The seed's denoiser is InstructPix2Pix's 8-channel UNet (noisy latents + source latents) conditioned on
    the instruction, trained with ``L_denoise`` (Eq. 10) plus ``L_region`` and ``L_global`` on the *predicted*
    clean image ``x^_0`` (x_t -> UNet -> x^_0 -> gated fusion -> f_r -> L_region, L_global). The summary does
    not say how the region embedding reaches the UNet at inference; we make it an input: ``z`` of the
    *source* image's region is mapped to ``num_tokens`` tokens appended to the instruction's text-encoder
    states (the UNet's cross-attention context), so the gate (and its ablation) changes the edit. With the
    UNet frozen (default) these tokens, the fusion and the scene head are all that is trained;
    ``train_unet=True`` also trains the UNet as the seed's stage 3 does.

:meth:`RegionInContext.training_losses` is the seed's total loss (Eq. 8-10):
``L = l_d L_denoise + l_r L_region + l_g L_global + l_x a_t (L_region(x^_0) + L_global(x^_0))``, with the alignment
terms on the ground-truth target image (stages 1-2: they train the fusion and the scene head) and the ``x^_0``
terms through the frozen VAE and CLIP, with the fusion and scene head as fixed critics (stage 3: they train only
what produces ``x^_0``), weighted by ``a_t = alpha_bar_t`` (at high noise ``x^_0`` is a blur).

Inference (:meth:`RegionInContext.edit`): the image is resized to the UNet's native size (PIL bicubic, as the
InstructPix2Pix baseline does), the region (given, a localizer's, or the whole image) gives ``z``, and diffusers'
own ``StableDiffusionInstructPix2PixPipeline`` runs with ``prompt_embeds = [text(instruction); tokens(z)]`` and
``negative_prompt_embeds = [text(""); null tokens]`` (its three-branch guidance: text ``text_guidance``, image
``image_guidance``). With a region, the result is composed into the source inside it (bit-exact outside;
``compose=False`` keeps the whole generated image).

Weights: only the new modules are saved (``model.safetensors`` + ``config.json`` + ``README.md``; with
``train_unet`` also ``unet/``); the frozen components come from the base model folder (``config.base``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from regionedit.localize.features import text_embeddings

from .region_context import (  # noqa: F401 (the building blocks, re-exported)
    METHOD_NAME,
    WEIGHTS_FILE,
    CONFIG_FILE,
    FORMAT_VERSION,
    RegionInContextConfig,
    RegionFeatures,
    region_box,
    RegionEncoder,
    GatedContextAttention,
    RegionTokens,
    RegionInContextWeights,
    same_text_positives,
    cosine_distance,
    contrastive_loss,
    region_loss,
    scene_loss,
    gate_statistics,
    resize_rgb,
    prepare_image,
    prepare_mask,
    check_rgb,
    _to_uint8,
    _resize_back,
    _localized,
)

# --------------------------------------------------------------------------------------------------
# the method


@dataclasses.dataclass
class RegionInContextOutput:
    """An edit: ``image`` (H, W, 3) uint8; ``region`` (H, W) bool the region used (None: the whole image);
    ``status`` ``"edited"`` or ``"no_edit"`` (a localizer found no region: the input is returned);
    ``gate`` the gate statistics of this edit (:func:`gate_statistics`)."""

    image: np.ndarray
    region: np.ndarray | None
    status: str
    gate: dict[str, float]


class RegionInContext:
    """Seed 000 on an InstructPix2Pix UNet (module docstring).

    >>> m = RegionInContext.from_pretrained("runs/ric/export")              # trained weights + their base
    >>> out = m(image, "make the red circle blue", region=mask, seed=0)     # (H, W, 3) uint8
    >>> m.gate_statistics()                                                 # the last edit's gate values

    ``localizer``: optional ``(image, instruction) -> (H, W) mask`` (or a regionedit zero-shot localizer's
    ``(prob, presence)``) used when no region is given; without one, no region means the whole image.
    """

    name = METHOD_NAME

    def __init__(self, config: RegionInContextConfig, *, clip, image_mean, image_std, clip_tokenizer, text_encoder,
                 tokenizer, vae, unet, scheduler, weights: RegionInContextWeights | None = None,
                 localizer: Callable | None = None):
        if unet.config.in_channels != 8:
            raise ValueError(f"the denoiser must be an 8-channel InstructPix2Pix UNet, got {unet.config.in_channels} "
                             "input channels")
        self.config = config
        self.encoder = RegionEncoder(clip, image_mean, image_std, config.region_embedding, config.crop_margin)
        self.clip, self.clip_tokenizer = clip, clip_tokenizer
        self.text_encoder, self.tokenizer, self.vae, self.unet, self.scheduler = text_encoder, tokenizer, vae, unet, scheduler
        p = next(clip.parameters())
        self.device, self.dtype = p.device, p.dtype
        if weights is None:
            weights = RegionInContextWeights(config, self.encoder.dim, int(unet.config.cross_attention_dim))
        self.weights = weights.to(self.device, self.dtype)
        self.unet.requires_grad_(bool(config.train_unet))
        self.localizer = localizer
        self.last_gate: torch.Tensor | None = None
        self.last_attention: torch.Tensor | None = None
        self._pipe = None
        self.vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.size = int(unet.config.sample_size) * self.vae_factor
        self.params = {"method": METHOD_NAME, "config": dataclasses.asdict(config), "resolution": self.size,
                       "resize": f"PIL bicubic to {self.size}x{self.size} and back"}

    # -- building / saving ---------------------------------------------------------------------------
    @classmethod
    def from_models(cls, models, config: RegionInContextConfig | None = None, unet=None,
                    weights: RegionInContextWeights | None = None, localizer: Callable | None = None) -> "RegionInContext":
        """A method over loaded :class:`regionedit.models.Models` (``unet``: the InstructPix2Pix UNet; default
        ``<models.location>/<config.unet_subfolder>``). Fresh (untrained) new weights unless ``weights``."""
        config = config or RegionInContextConfig(base=models.model_id)
        if config.base is None:
            config = dataclasses.replace(config, base=models.model_id)
        if unet is None:
            unet = load_ip2p_unet(Path(models.location) / config.unet_subfolder, models.device, models.dtype)
        proc = models.clip_processor
        return cls(config, clip=models.clip, image_mean=proc.image_mean, image_std=proc.image_std,
                   clip_tokenizer=models.clip_tokenizer, text_encoder=models.text_encoder, tokenizer=models.tokenizer,
                   vae=models.vae, unet=unet, scheduler=models.scheduler, weights=weights, localizer=localizer)

    @classmethod
    def from_pretrained(cls, folder: str | Path, models=None, localizer: Callable | None = None,
                        torch_dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> "RegionInContext":
        """Load a folder written by :meth:`save_pretrained`: its config and new weights, on the frozen components
        of ``models`` (default: ``regionedit.models.load(config.base)``, or the folder's parent model folder
        when the config names no base)."""
        from safetensors.torch import load_file

        from regionedit import models as _models

        folder = Path(folder)
        raw = json.loads((folder / CONFIG_FILE).read_text())
        if raw.get("method", METHOD_NAME) != METHOD_NAME:
            raise ValueError(f"{folder} holds a {raw.get('method')!r} method, not {METHOD_NAME!r}")
        config = RegionInContextConfig.from_dict(raw)
        if models is None:
            base = config.base
            if base is None:
                if not (folder.parent / "model_index.json").exists():
                    raise ValueError(f"{folder}/config.json names no base model and {folder.parent} is not a model folder")
                base = str(folder.parent)
            models = _models.load(base, dtype=torch_dtype, device=device)
        unet_dir = folder / "unet"
        unet = load_ip2p_unet(unet_dir, models.device, models.dtype) if (unet_dir / "config.json").exists() else None
        method = cls.from_models(models, config, unet=unet, localizer=localizer)
        state = load_file(str(folder / WEIGHTS_FILE))
        method.weights.load_state_dict({k: v.to(method.dtype) for k, v in state.items()}, strict=True)
        return method

    def save_pretrained(self, folder: str | Path, training: dict | None = None,
                        dtype: torch.dtype = torch.float32) -> Path:
        """Write ``config.json``, ``model.safetensors`` (the new weights only, in ``dtype``; fp16 for a bundle),
        ``unet/`` when the UNet is trained, ``README.md`` (model card) and, given ``training`` (the trainer's
        record), ``training_state.json``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.weights.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "method": METHOD_NAME})
        cfg = {"method": METHOD_NAME, "format_version": FORMAT_VERSION, **self.config.to_dict()}
        (folder / CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")
        if self.config.train_unet:
            self.unet.save_pretrained(folder / "unet", safe_serialization=True)
        if training is not None:
            (folder / "training_state.json").write_text(json.dumps(training, indent=2) + "\n")
        (folder / "README.md").write_text(model_card(self, training))
        return folder

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "RegionInContext":
        """Move the new weights and the UNet (the other components belong to the shared Models: move those with
        ``Models.to``)."""
        if device is not None:
            self.device = torch.device(device)
        if dtype is not None:
            self.dtype = dtype
        self.weights.to(self.device, self.dtype)
        self.unet.to(self.device, self.dtype)
        self._pipe = None
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the seed trains here: the new weights, plus the UNet with ``train_unet``."""
        params = list(self.weights.parameters())
        if self.config.train_unet:
            params += list(self.unet.parameters())
        return params

    # -- the pieces ------------------------------------------------------------------------------------
    def encode_instruction(self, texts: Sequence[str]) -> torch.Tensor:
        """Text-encoder states (B, L, C) of ``texts`` as the InstructPix2Pix pipeline computes them."""
        tok = self.tokenizer(list(texts), padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt")
        with torch.no_grad():
            return self.text_encoder(tok.input_ids.to(self.device))[0]

    def clip_text(self, texts: Sequence[str]) -> torch.Tensor:
        """CLIP text embeddings (B, D) of descriptions (frozen)."""
        with torch.no_grad():
            return text_embeddings(self.clip, self.clip_tokenizer, list(texts))

    def region_in_context(self, images: torch.Tensor, masks: torch.Tensor, gate_off: bool | None = None,
                          fusion: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, RegionFeatures]:
        """``(z, g, attention, features)`` of images (B, 3, H, W) in [-1, 1] and region masks (B, H, W);
        ``gate_off`` None: the config's. ``fusion``: a replacement for ``self.weights.fusion`` (the frozen critic)."""
        gate_off = self.config.gate_off if gate_off is None else gate_off
        feats = self.encoder(images, masks)
        fuse = self.weights.fusion if fusion is None else fusion
        z, g, attn = fuse(feats.region, feats.tokens, feats.inside, gate_off)
        return z, g, attn, feats

    def conditioning(self, images: torch.Tensor, masks: torch.Tensor, instructions: Sequence[str],
                     gate_off: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(prompt_embeds (B, L + n, C), g (B, D))``: the instruction's states followed by the region tokens."""
        z, g, attn, _ = self.region_in_context(images, masks, gate_off)
        self.last_gate, self.last_attention = g.detach(), attn.detach()
        return torch.cat([self.encode_instruction(instructions), self.weights.tokens(z)], dim=1), g

    def null_conditioning(self, batch: int) -> torch.Tensor:
        """The unconditional branches' context: the empty prompt's states followed by the null tokens."""
        return torch.cat([self.encode_instruction([""] * batch), self.weights.tokens.null_tokens(batch)], dim=1)

    def scene_embedding(self, e_img: torch.Tensor) -> torch.Tensor:
        return self.weights.scene_head(e_img)

    # -- the seed's total loss (Eqs. 8-10) -----------------------------------------------------------------
    def training_losses(self, source: torch.Tensor, target: torch.Tensor, masks: torch.Tensor,
                        instructions: Sequence[str], region_texts: Sequence[str], scene_texts: Sequence[str],
                        generator: torch.Generator, *, denoise_weight: float = 1.0, region_weight: float = 1.0,
                        scene_weight: float = 1.0, x0_weight: float = 0.1, cfg_drop: float = 0.05) -> dict[str, torch.Tensor]:
        """The loss of one batch, as a dict of scalars with ``"loss"`` the weighted total (call backward on it).

        ``source``/``target`` (B, 3, S, S) in [-1, 1] at the native size, ``masks`` (B, S, S), all randomness from
        ``generator`` (noise, timesteps, guidance dropout). Terms: ``denoise`` (Eq. 10: MSE to the scheduler's
        target, v or epsilon), ``region`` and ``scene`` (Eqs. 8-9/11 on the target image: train the fusion and the
        scene head), ``region_x0`` and ``scene_x0`` (the same losses on the decoded ``x^_0``, the fusion and scene
        head fixed, weighted by ``alpha_bar_t``; skipped when ``x0_weight`` is 0). Guidance dropout as
        InstructPix2Pix trains: ``cfg_drop`` of the samples lose the text (instruction and region tokens together:
        the null context), ``cfg_drop`` the source image, ``cfg_drop`` both."""
        b = source.shape[0]
        dev = self.device
        sched, sf = self.scheduler, self.vae.config.scaling_factor
        t_region = self.clip_text(region_texts)
        t_scene = self.clip_text(scene_texts)
        pos_r, pos_s = same_text_positives(region_texts), same_text_positives(scene_texts)
        tau = self.config.temperature
        out: dict[str, torch.Tensor] = {}

        # stages 1-2: the region in context of the ground-truth edited image and its scene, against their texts
        z_t, g_t, _, f_t = self.region_in_context(target, masks)
        out["region"] = region_loss(z_t, t_region, tau, pos_r)
        out["scene"] = scene_loss(self.scene_embedding(f_t.image), t_scene, tau, pos_s)

        # stage 3: the InstructPix2Pix denoiser conditioned on [instruction; tokens(z of the source's region)]
        with torch.no_grad():
            lat = self.vae.encode(target).latent_dist.sample(generator=generator) * sf
            src_lat = self.vae.encode(source).latent_dist.mode()  # unscaled, as the IP2P pipeline feeds it
        noise = torch.randn(lat.shape, generator=generator).to(dev, lat.dtype)
        t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=generator).to(dev)
        r = torch.rand(b, generator=generator).to(dev)
        drop_text = (r < cfg_drop) | ((r >= 2 * cfg_drop) & (r < 3 * cfg_drop))
        drop_image = (r >= cfg_drop) & (r < 3 * cfg_drop)
        cond, g_s = self.conditioning(source, masks, instructions)
        cond = torch.where(drop_text[:, None, None], self.null_conditioning(b), cond)
        src_lat = src_lat * (~drop_image).to(src_lat.dtype)[:, None, None, None]
        noisy = sched.add_noise(lat, noise, t)
        pred = self.unet(torch.cat([noisy, src_lat], dim=1), t, cond).sample
        kind = sched.config.prediction_type
        target_eps = {"epsilon": noise, "v_prediction": None, "sample": lat}[kind]
        if target_eps is None:
            target_eps = sched.get_velocity(lat, noise, t)
        out["denoise"] = F.mse_loss(pred, target_eps)
        total = denoise_weight * out["denoise"] + region_weight * out["region"] + scene_weight * out["scene"]

        if x0_weight > 0:
            ac = sched.alphas_cumprod.to(dev, lat.dtype)[t].view(b, 1, 1, 1)
            if kind == "v_prediction":
                x0 = ac.sqrt() * noisy - (1 - ac).sqrt() * pred
            elif kind == "epsilon":
                x0 = (noisy - (1 - ac).sqrt() * pred) / ac.sqrt()
            else:
                x0 = pred
            img0 = self.vae.decode(x0 / sf).sample.clamp(-1, 1)
            frozen = {k: v.detach() for k, v in self.weights.fusion.named_parameters()}

            def critic(e_r, tokens, inside, gate_off):
                return torch.func.functional_call(self.weights.fusion, frozen, (e_r, tokens, inside, gate_off))

            z0, _, _, f0 = self.region_in_context(img0, masks, fusion=critic)
            w = ac.flatten()
            cos_r = 1 - F.cosine_similarity(z0, t_region, dim=-1)
            scene0 = F.linear(f0.image, self.weights.scene_head.weight.detach(), self.weights.scene_head.bias.detach())
            cos_s = 1 - F.cosine_similarity(scene0, t_scene, dim=-1)
            # cosine distance (Mechanism 1: "cosine distance between gated-fused region embeddings and region
            # descriptions"), weighted per sample by alpha_bar_t
            out["region_x0"] = (w * cos_r).mean()
            out["scene_x0"] = (w * cos_s).mean()
            total = total + x0_weight * (region_weight * out["region_x0"] + scene_weight * out["scene_x0"])
        out["loss"] = total
        out["gate_mean"] = g_s.detach().mean()
        out["gate_target_mean"] = g_t.detach().mean()
        return out

    # -- inference ---------------------------------------------------------------------------------------
    def pipeline(self):
        """diffusers' own ``StableDiffusionInstructPix2PixPipeline`` over the components (DDIM from the folder's
        scheduler config, as the InstructPix2Pix baseline)."""
        if self._pipe is None:
            from diffusers import DDIMScheduler, StableDiffusionInstructPix2PixPipeline

            self._pipe = StableDiffusionInstructPix2PixPipeline(
                vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer, unet=self.unet,
                scheduler=DDIMScheduler.from_config(self.scheduler.config), safety_checker=None,
                feature_extractor=None, requires_safety_checker=False)
            self._pipe.set_progress_bar_config(disable=True)
        return self._pipe

    def resolve_region(self, image: np.ndarray, instruction: str, region: np.ndarray | None) -> np.ndarray | None:
        """The region an edit uses: ``region`` when given, else the localizer's, else None (the whole image)."""
        if region is not None:
            r = np.asarray(region)
            return r if r.dtype == bool else r >= 0.5
        if self.localizer is not None:
            return _localized(self.localizer(image, instruction))
        return None

    @torch.no_grad()
    def edit(self, image: np.ndarray, instruction: str, region: np.ndarray | None = None, seed: int = 0,
             steps: int = 20, image_guidance: float = 1.5, text_guidance: float = 4.0, compose: bool | None = None,
             gate_off: bool | None = None) -> RegionInContextOutput:
        """Edit ``image`` ((H, W, 3) uint8) by ``instruction``.

        ``region``: (H, W) bool, or None for the localizer's (when the method has one) or the whole image.
        ``compose``: paste the result into the source inside the region (bit-exact outside it); None = when
        there is a region. ``gate_off``: None = the config's (the ablation switch for a trained model)."""
        image = check_rgb(image)
        hw = image.shape[:2]
        mask = self.resolve_region(image, instruction, region)
        if mask is not None and mask.shape != hw:
            raise ValueError(f"region has shape {mask.shape}, expected {hw}")
        if mask is not None and not mask.any():
            return RegionInContextOutput(image.copy(), mask, "no_edit", {"n": 0})
        x = prepare_image(image, self.size).to(self.device, self.dtype)
        m = prepare_mask(mask, hw, self.size).to(self.device, self.dtype)
        cond, g = self.conditioning(x, m, [instruction], gate_off)
        null = self.null_conditioning(1)
        pil = Image.fromarray(resize_rgb(image, self.size))
        out = self.pipeline()(prompt_embeds=cond, negative_prompt_embeds=null, image=pil, num_inference_steps=steps,
                              guidance_scale=text_guidance, image_guidance_scale=image_guidance,
                              generator=torch.Generator().manual_seed(int(seed)), output_type="np").images[0]
        edited = _resize_back(_to_uint8(out), hw)
        if compose is None:
            compose = mask is not None
        if compose and mask is not None:
            from regionedit.compose import compose as _compose

            edited = _compose(image, edited, mask)
        return RegionInContextOutput(edited, mask, "edited", gate_statistics(g))

    def __call__(self, image: np.ndarray, instruction: str, region: np.ndarray | None = None, seed: int = 0,
                 steps: int = 20, image_guidance: float = 1.5, text_guidance: float = 4.0,
                 compose: bool | None = None, gate_off: bool | None = None) -> np.ndarray:
        """The edited image, (H, W, 3) uint8 (see :meth:`edit`)."""
        return self.edit(image, instruction, region, seed, steps, image_guidance, text_guidance, compose, gate_off).image

    @torch.no_grad()
    def gate_statistics(self, image: np.ndarray | None = None, region: np.ndarray | None = None,
                        instruction: str = "") -> dict[str, float]:
        """Gate statistics (:func:`gate_statistics`) of ``image``'s region (whole image when None), or of the
        last edit / training batch when no image is given."""
        if image is None:
            if self.last_gate is None:
                raise ValueError("no gate values yet: pass an image, or edit one first")
            return gate_statistics(self.last_gate)
        image = check_rgb(image)
        mask = self.resolve_region(image, instruction, region)
        x = prepare_image(image, self.size).to(self.device, self.dtype)
        m = prepare_mask(mask, image.shape[:2], self.size).to(self.device, self.dtype)
        _, g, attn, _ = self.region_in_context(x, m)
        self.last_gate, self.last_attention = g.detach(), attn.detach()
        return gate_statistics(g)


def load_ip2p_unet(folder: Path, device, dtype):
    """The 8-channel InstructPix2Pix UNet in ``folder`` (frozen; the method unfreezes it for ``train_unet``)."""
    from diffusers import UNet2DConditionModel

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"no InstructPix2Pix UNet at {folder} (region_in_context needs the 8-channel "
                                "unet_ip2p of the base model folder)")
    unet = UNet2DConditionModel.from_pretrained(folder, torch_dtype=dtype)
    if unet.config.in_channels != 8:
        raise ValueError(f"{folder} has {unet.config.in_channels} input channels; InstructPix2Pix needs 8")
    return unet.to(device).eval().requires_grad_(False)


# --------------------------------------------------------------------------------------------------
# the eval harness's protocol (regionedit.evaluation.baselines.Method), for the main engineer to register


class EvalAdapter:
    """``adapter(image, instruction, seed, sample) -> (edited, region, status)`` as the evaluation harness calls
    its methods. ``region_source``: ``"localizer"`` (the method's localizer, else the whole image),
    ``"ground_truth"`` (``sample.mask``: an oracle row) or ``"whole"``; ``compose``: paste back inside the region;
    ``gate_off``: the seed's gate ablation (g = 0, no context) applied to the trained weights at inference."""

    def __init__(self, method: RegionInContext, region_source: str = "localizer", compose: bool = True,
                 steps: int = 20, image_guidance: float = 1.5, text_guidance: float = 4.0, name: str | None = None,
                 gate_off: bool = False):
        if region_source not in ("localizer", "ground_truth", "whole"):
            raise ValueError(f"region_source must be 'localizer', 'ground_truth' or 'whole', got {region_source!r}")
        self.method, self.region_source, self.compose = method, region_source, compose
        self.steps, self.image_guidance, self.text_guidance = steps, image_guidance, text_guidance
        self.name = name or METHOD_NAME
        self.gate_off = gate_off
        self.params = {**method.params, "region_source": region_source, "compose": compose, "steps": steps,
                       "image_guidance": image_guidance, "text_guidance": text_guidance,
                       **({"gate_off": True} if gate_off else {})}
        self.last_gate: dict[str, float] | None = None

    def __call__(self, image, instruction, seed, sample):
        region = None
        if self.region_source == "ground_truth":
            region = getattr(sample, "mask", None)
        elif self.region_source == "whole":
            region = np.ones(np.asarray(image).shape[:2], dtype=bool)
        res = self.method.edit(image, instruction, region=region, seed=seed, steps=self.steps,
                               image_guidance=self.image_guidance, text_guidance=self.text_guidance,
                               compose=self.compose, gate_off=True if self.gate_off else None)
        self.last_gate = res.gate
        return res.image, res.region, res.status


# --------------------------------------------------------------------------------------------------
# model card


def model_card(method: RegionInContext, training: dict | None = None) -> str:
    c = method.config
    n_new = sum(p.numel() for p in method.weights.parameters())
    lines = [
        f"# {METHOD_NAME}",
        "",
        "Seed 000, *Region in Context* (arXiv 2510.16772), on an InstructPix2Pix UNet: region embeddings from a frozen "
        "CLIP over the region attend to the full image's CLIP patch tokens through gated cross-attention "
        "(z = e~_r + g * h, g = sigmoid(...)); z becomes conditioning tokens appended to the instruction's text states. "
        "Described in docs/methods/region_in_context.md.",
        "",
        "## Contents",
        "",
        f"- `{WEIGHTS_FILE}`: the new weights only ({n_new} parameters: fusion, scene head, region tokens)",
        f"- `{CONFIG_FILE}`: `RegionInContextConfig`",
        f"- base model (frozen CLIP, VAE, text encoder, scheduler, `{c.unet_subfolder}`): `{c.base}`",
        f"- UNet trained: {'yes (`unet/`)' if c.train_unet else 'no (the base UNet, frozen)'}",
        f"- gate: {c.gate}, initial logit {c.gate_init}, ablation gate_off={c.gate_off}",
        f"- region embedding: {c.region_embedding}; tokens: {c.num_tokens}; temperature {c.temperature}",
        "- deviation from the seed: the scene-level loss is in CLIP space with a learned linear head (no BLIP bundled)",
        "",
        "## Training",
        "",
    ]
    if training:
        for k, v in training.items():
            lines.append(f"- {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    else:
        lines.append("- not trained: initial weights (identity region/scene projections, gate at its initial logit)")
    lines += ["", "Load with `regionedit.methods.region_in_context.RegionInContext.from_pretrained(folder)`.", ""]
    return "\n".join(lines)
