"""Seed 000, "Region in Context": the building blocks of :mod:`regionedit.methods.region_in_context` - its config,
the region encoder over a frozen CLIP, the gated context attention (z = e_r + g * h), the region tokens, the
region / scene contrastive losses, gate statistics and image helpers. The method itself (training losses, edits,
save / load) is in ``region_in_context.py``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from regionedit.localize.features import clip_pixels, image_features

METHOD_NAME = "region_in_context"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


@dataclasses.dataclass
class RegionInContextConfig:
    """Settings of the method (saved in ``config.json``).

    Attributes:
        base: the model folder or bundled name with the frozen components (``clip``, ``vae``, ``text_encoder``,
            ``tokenizer``, ``scheduler`` and the 8-channel ``unet_ip2p``); None: the folder the method's own
            folder sits in (``<model>/region_in_context``).
        unet_subfolder: the InstructPix2Pix UNet's subfolder of ``base``.
        region_embedding: ``"crop"`` (CLIP's image embedding of a square crop around the region) or ``"pool"``
            (CLIP's patch features averaged over the region's patches).
        crop_margin: context added around the region's box on each side, as a fraction of its longer side.
        heads: attention heads of the gated cross-attention (divides CLIP's projection dim).
        gate: ``"channel"`` (``g = sigmoid(W_g [e~_r; h] + b_g)``, one value per channel, input-dependent) or
            ``"scalar"`` (one learned logit).
        gate_init: the gate's initial logit (``b_g``; ``W_g`` starts at 0): 0 -> g = 0.5 everywhere.
        gate_off: the seed's ablation, ``g = 0`` (``z = e~_r``): training and inference without context.
        mark_region: add a learned "inside the region" vector (zero at init), scaled by each patch's coverage,
            to the keys/values, so the query can tell its own patches from the context (our addition).
        num_tokens: conditioning tokens ``z`` becomes in the UNet's cross-attention context.
        temperature: InfoNCE temperature of the contrastive losses (Eq. 11).
        train_unet: also train the InstructPix2Pix UNet (the seed's stage 3); saved in ``unet/``.
        init_seed: seed of the new modules' initialisation (drawn in a forked RNG: the global one is untouched).
    """

    base: str | None = None
    unet_subfolder: str = "unet_ip2p"
    region_embedding: str = "crop"
    crop_margin: float = 0.15
    heads: int = 4
    gate: str = "channel"
    gate_init: float = 0.0
    gate_off: bool = False
    mark_region: bool = True
    num_tokens: int = 4
    temperature: float = 0.07
    train_unet: bool = False
    init_seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RegionInContextConfig":
        """The config of a ``to_dict`` (a saved run's or folder's); keys of other versions are dropped."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def __post_init__(self):
        if self.region_embedding not in ("crop", "pool"):
            raise ValueError(f"region_embedding must be 'crop' or 'pool', got {self.region_embedding!r}")
        if self.gate not in ("channel", "scalar"):
            raise ValueError(f"gate must be 'channel' or 'scalar', got {self.gate!r}")
        if self.num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1, got {self.num_tokens}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


# --------------------------------------------------------------------------------------------------
# the region-level CLIP


@dataclasses.dataclass
class RegionFeatures:
    """What :class:`RegionEncoder` reads of a batch: ``region`` (B, D) the region embedding ``e_r``; ``tokens``
    (B, N, D) the full image's patch tokens ``F``; ``inside`` (B, N) each patch's coverage by the region (0..1);
    ``image`` (B, D) the whole image's CLIP embedding ``e_img``. D is CLIP's projection dim."""

    region: torch.Tensor
    tokens: torch.Tensor
    inside: torch.Tensor
    image: torch.Tensor


def region_box(mask: torch.Tensor | np.ndarray, margin: float = 0.15) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` (end-exclusive): a square box around ``mask > 0.5`` with ``margin`` x its longer side
    of context on each side, shifted (not cut) to fit the image, and cut only where the image is narrower than
    the box. An empty mask gives the whole image."""
    m = (mask if isinstance(mask, torch.Tensor) else torch.from_numpy(np.asarray(mask, dtype=np.float32))) > 0.5
    h, w = m.shape
    idx = torch.nonzero(m)
    if idx.numel() == 0:
        return 0, h, 0, w
    y0, x0 = (int(v) for v in idx.min(0).values)
    y1, x1 = (int(v) + 1 for v in idx.max(0).values)
    side = max(y1 - y0, x1 - x0)
    side = int(math.ceil(side * (1 + 2 * margin)))
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2

    def span(c: float, n: int) -> tuple[int, int]:
        s = min(side, n)
        a = int(round(c - s / 2))
        a = min(max(a, 0), n - s)
        return a, a + s

    (ya, yb), (xa, xb) = span(cy, h), span(cx, w)
    return ya, yb, xa, xb


class RegionEncoder(nn.Module):
    """The region-level CLIP (frozen): region embeddings ``e_r`` and the full image's tokens ``F``.

    ``forward(images, masks)``: ``images`` (B, 3, H, W) in [-1, 1] (differentiable: the ``x^_0`` losses
    backpropagate through it), ``masks`` (B, H, W) in {0, 1} (1 = region; an all-zero mask means the whole
    image) -> :class:`RegionFeatures`."""

    def __init__(self, clip, image_mean: Sequence[float], image_std: Sequence[float], mode: str = "crop",
                 margin: float = 0.15):
        super().__init__()
        self.clip = clip  # frozen: requires_grad False, eval mode (Models loads it so)
        self.mean, self.std = list(image_mean), list(image_std)
        self.mode, self.margin = mode, margin
        vc = clip.config.vision_config
        self.size = int(vc.image_size)
        self.grid = int(vc.image_size) // int(vc.patch_size)

    @property
    def dim(self) -> int:
        return int(self.clip.config.projection_dim)

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> RegionFeatures:
        masks = masks.to(images.dtype)
        empty = masks.flatten(1).amax(1) <= 0.5
        masks = torch.where(empty[:, None, None], torch.ones_like(masks), masks)
        patches, e_img = image_features(self.clip, clip_pixels(images, self.size, self.mean, self.std))
        inside = F.adaptive_avg_pool2d(masks[:, None], (self.grid, self.grid)).flatten(1)  # (B, N)
        if self.mode == "pool":
            wsum = inside.sum(1, keepdim=True)
            pooled = (inside[..., None] * patches).sum(1) / wsum.clamp_min(1e-6)
            e_r = torch.where(wsum > 0, pooled, e_img)
        else:
            crops = []
            for b in range(images.shape[0]):
                y0, y1, x0, x1 = region_box(masks[b].detach(), self.margin)
                crops.append(clip_pixels(images[b:b + 1, :, y0:y1, x0:x1], self.size, self.mean, self.std))
            out = self.clip.vision_model(pixel_values=torch.cat(crops))
            e_r = self.clip.visual_projection(out.pooler_output)
        return RegionFeatures(region=e_r, tokens=patches, inside=inside, image=e_img)


# --------------------------------------------------------------------------------------------------
# gated cross-attention fusion (Sec. 3.2.2, Eqs. 14-15)


class GatedContextAttention(nn.Module):
    """The region embedding attends to the full image's tokens; a sigmoid gate sets how much context enters:

        e~_r = W_r e_r                       (W_r = identity at init)
        h    = W_o MHA(LN(e~_r), LN(F + c * u_in), LN(F + c * u_in))   (u_in = 0 at init, c = patch coverage)
        g    = sigmoid(W_g [e~_r; h] + b_g)  (per channel; W_g = 0, b_g = gate_init at init)  or sigmoid(theta)
        z    = e~_r + g * h                  (gate_off: g = 0, z = e~_r)

    ``forward(e_r, tokens, inside=None, gate_off=False) -> (z (B, D), g (B, D), attention (B, N))``."""

    def __init__(self, dim: int, heads: int = 4, gate: str = "channel", gate_init: float = 0.0, mark_region: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide the embedding dim ({dim})")
        self.gate_kind = gate
        self.region_proj = nn.Linear(dim, dim)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.inside = nn.Parameter(torch.zeros(dim)) if mark_region else None
        if gate == "channel":
            self.gate = nn.Linear(2 * dim, dim)
            self.gate_logit = None
        else:
            self.gate = None
            self.gate_logit = nn.Parameter(torch.zeros(()))
        with torch.no_grad():
            self.region_proj.weight.copy_(torch.eye(dim))
            self.region_proj.bias.zero_()
            if self.gate is not None:
                self.gate.weight.zero_()
                self.gate.bias.fill_(float(gate_init))
            else:
                self.gate_logit.fill_(float(gate_init))

    def forward(self, e_r: torch.Tensor, tokens: torch.Tensor, inside: torch.Tensor | None = None,
                gate_off: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        e = self.region_proj(e_r)
        kv = tokens
        if self.inside is not None and inside is not None:
            kv = kv + inside[..., None].to(kv.dtype) * self.inside
        kv = self.norm_kv(kv)
        h, attn = self.attn(self.norm_q(e)[:, None], kv, kv, need_weights=True)
        h = h[:, 0]
        if gate_off:
            g = torch.zeros_like(h)
        elif self.gate is not None:
            g = torch.sigmoid(self.gate(torch.cat([e, h], dim=-1)))
        else:
            g = torch.sigmoid(self.gate_logit).expand_as(h)
        return e + g * h, g, attn[:, 0]


class RegionTokens(nn.Module):
    """``z`` (B, D) -> ``num_tokens`` conditioning tokens (B, n, C) for the UNet's cross-attention (C its
    ``cross_attention_dim``): a linear map and a LayerNorm; ``null`` (n, C, zero at init) is what the
    unconditional branches of classifier-free guidance get instead."""

    def __init__(self, dim: int, cross_dim: int, num_tokens: int):
        super().__init__()
        self.n, self.cross_dim = num_tokens, cross_dim
        self.proj = nn.Linear(dim, num_tokens * cross_dim)
        self.norm = nn.LayerNorm(cross_dim)
        self.null = nn.Parameter(torch.zeros(num_tokens, cross_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(z).view(z.shape[0], self.n, self.cross_dim))

    def null_tokens(self, batch: int) -> torch.Tensor:
        return self.null[None].expand(batch, -1, -1)


class RegionInContextWeights(nn.Module):
    """The method's new (trainable) weights: ``fusion`` (:class:`GatedContextAttention`), ``scene_head``
    (``W_s``, identity at init) and ``tokens`` (:class:`RegionTokens`). This is what ``model.safetensors`` holds."""

    def __init__(self, config: RegionInContextConfig, dim: int, cross_dim: int):
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # deterministic init; the caller's global RNG is left as it was
            torch.manual_seed(config.init_seed)
            self.fusion = GatedContextAttention(dim, config.heads, config.gate, config.gate_init, config.mark_region)
            self.scene_head = nn.Linear(dim, dim)
            self.tokens = RegionTokens(dim, cross_dim, config.num_tokens)
        with torch.no_grad():
            self.scene_head.weight.copy_(torch.eye(dim))
            self.scene_head.bias.zero_()


# --------------------------------------------------------------------------------------------------
# losses (Sec. 3.2, Eqs. 8-11)


def same_text_positives(texts: Sequence[str]) -> torch.Tensor:
    """(B, B) bool: True where two texts of a batch are identical (both are positives of each other, so a
    repeated description is not pushed away from itself)."""
    return torch.tensor([[a == b for b in texts] for a in texts], dtype=torch.bool)


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean ``1 - cos(a_i, b_i)`` over the batch."""
    return (1 - F.cosine_similarity(a, b, dim=-1)).mean()


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.07,
                     positives: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE (Eq. 11) between rows of ``a`` (B, D) and ``b`` (B, D) on cosine similarity / temperature:

        L = 1/2 (mean_i -log sum_{j in P_i} softmax_j(s_ij) + mean_j -log sum_{i in P_j} softmax_i(s_ij))

    with ``P`` = ``positives`` (B, B) bool (default the diagonal: pair i matches i). A batch of one has no
    negatives: the loss is then the cosine distance (:func:`cosine_distance`)."""
    if a.shape[0] == 1:
        return cosine_distance(a, b)
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    pos = torch.eye(a.shape[0], dtype=torch.bool, device=a.device) if positives is None else positives.to(a.device)
    neg_inf = torch.finfo(logits.dtype).min

    def one_side(lg: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return (torch.logsumexp(lg, dim=1) - torch.logsumexp(lg.masked_fill(~p, neg_inf), dim=1)).mean()

    return 0.5 * (one_side(logits, pos) + one_side(logits.T, pos.T))


def region_loss(z: torch.Tensor, region_text: torch.Tensor, temperature: float = 0.07,
                positives: torch.Tensor | None = None) -> torch.Tensor:
    """``L_region``: region-in-context embeddings ``z`` against their region descriptions' CLIP text embeddings."""
    return contrastive_loss(z, region_text, temperature, positives)


def scene_loss(scene: torch.Tensor, scene_text: torch.Tensor, temperature: float = 0.07,
               positives: torch.Tensor | None = None) -> torch.Tensor:
    """``L_global``: whole-image embeddings against their scene descriptions' text embeddings."""
    return contrastive_loss(scene, scene_text, temperature, positives)


def gate_statistics(g: torch.Tensor, low: float = 0.05, high: float = 0.95) -> dict[str, float]:
    """Summary of gate values (any shape, in [0, 1]): ``mean``, ``std``, ``min``, ``max``, and the fractions
    saturated ``frac_low`` (< ``low``: no context) and ``frac_high`` (> ``high``: full context), ``n`` values.
    A gate stuck near 0 or 1 everywhere degenerates to "no context" / "context always" (the seed's break
    condition of Mechanism 2)."""
    v = g.detach().float().flatten()
    if v.numel() == 0:
        return {"n": 0}
    return {"n": int(v.numel()), "mean": float(v.mean()), "std": float(v.std()) if v.numel() > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()),
            "frac_low": float((v < low).float().mean()), "frac_high": float((v > high).float().mean())}


# --------------------------------------------------------------------------------------------------
# image / mask helpers (the same conversions at training and inference)


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 at ``size`` x ``size`` (PIL bicubic, as the InstructPix2Pix baseline); itself when already so."""
    image = check_rgb(image)
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


def prepare_image(image: np.ndarray, size: int) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> (1, 3, size, size) float32 in [-1, 1] (:func:`resize_rgb`)."""
    a = resize_rgb(image, size)
    return torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1


def prepare_mask(mask: np.ndarray | None, hw: tuple[int, int], size: int) -> torch.Tensor:
    """``(H, W)`` bool (None: the whole image) -> (1, size, size) float in {0, 1}. Downsizing, a model pixel is in
    the region when any image pixel it covers is (a thin region does not vanish); upsizing, nearest."""
    if mask is None:
        return torch.ones(1, size, size)
    m = np.asarray(mask)
    if m.shape != tuple(hw):
        raise ValueError(f"region has shape {m.shape}, expected {tuple(hw)} (the image's height and width)")
    t = torch.from_numpy((m >= 0.5) if m.dtype != bool else m).float()[None, None]
    if t.shape[-2] >= size and t.shape[-1] >= size:
        t = F.adaptive_max_pool2d(t, (size, size))
    else:
        t = F.interpolate(t, size=(size, size), mode="nearest")
    return (t > 0.5).float()[0]


def check_rgb(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError(f"image must be an (H, W, 3) uint8 RGB array, got shape {a.shape} dtype {a.dtype}")
    return a


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _resize_back(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == tuple(hw):
        return image
    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.Resampling.BICUBIC))


def _localized(result: Any) -> np.ndarray | None:
    """A localizer's answer -> (H, W) bool: an array (bool, or probabilities thresholded at 0.5), or the
    ``(prob, presence)`` pair regionedit's zero-shot localizers return."""
    if result is None:
        return None
    if isinstance(result, tuple):
        result = result[0]
    a = np.asarray(result)
    return a if a.dtype == bool else a >= 0.5
