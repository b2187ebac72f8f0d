"""Seed 002's building blocks (AdaptEdit, "Edit Where You Mean"): the factorised condition stream, the per-block
Block Adapter and SpatialGate, the MaskPredictor head and the two losses. Plain ``nn.Module`` s with no backbone
inside; :mod:`.adaptedit` hooks them into a frozen diffusers ``SD3Transformer2DModel``.

Frames: image tokens are the DiT's patch tokens in row-major order, ``N = (h / p) * (w / p)`` for latents
``(B, C, h, w)`` and patch size ``p`` (8 x 8 = 64 tokens for the bundled 16 x 16 latents, patch 2); the region
is in ``[0, 1]`` with 1 = edit, at pixel, latent or token resolution as each docstring says.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from .trainable import DictConfig


@dataclasses.dataclass
class AdaptEditConfig(DictConfig):
    """Architecture, ablation switches and inference settings (saved in ``config.json``).

    adapter_dim: bottleneck width of every Block Adapter and of the fused condition tokens.
    use_gate: the SpatialGate (ablation off: the adapter output reaches every token).
    use_mask_predictor: at inference, the region comes from the MaskPredictor (ablation off: the whole image is
        the region unless a mask is given).
    region_aware_weight: Region-Aware Loss, the extra weight of latent cells that change between source and
        target (weight ``1 + region_aware_weight`` there, 1 elsewhere); 0 = the plain flow-matching loss (ablation).
    mask_loss_weight: weight of the MaskPredictor's decoupled auxiliary loss (BCE + Dice).
    change_threshold: a pixel "changes" when the mean absolute RGB difference of source and target exceeds this
        (values in [0, 1]).
    predicted_mask_prob: share of training steps whose adapters get the MaskPredictor's (detached) region instead
        of the true one, so the editor learns to live with the predictor's errors.
    mask_threshold: the predicted region's binarisation threshold at inference.
    steps / guidance_scale: Euler steps of the flow scheduler and text classifier-free guidance at inference.
    max_sequence_length: the DiT's T5 length (the bundled DiT has no T5 and trained with 1 zero token).
    predictor_block: the frozen DiT block whose image-token output the MaskPredictor reads (negative: from the end).
    init_seed: seed of the (non-zero) initialisation; every adapter's output projection starts at zero, so an
        untrained AdaptEdit leaves the backbone's prediction unchanged.
    """

    adapter_dim: int = 64
    use_gate: bool = True
    use_mask_predictor: bool = True
    region_aware_weight: float = 4.0
    mask_loss_weight: float = 1.0
    change_threshold: float = 0.08
    predicted_mask_prob: float = 0.25
    mask_threshold: float = 0.5
    steps: int = 20
    guidance_scale: float = 3.0
    max_sequence_length: int = 1
    predictor_block: int = -2
    init_seed: int = 0

    def __post_init__(self) -> None:
        if self.adapter_dim < 1:
            raise ValueError(f"adapter_dim must be >= 1, got {self.adapter_dim}")
        for name in ("change_threshold", "predicted_mask_prob", "mask_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.region_aware_weight < 0 or self.mask_loss_weight < 0:
            raise ValueError("region_aware_weight and mask_loss_weight must be >= 0")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")



def tokens_to_grid(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, N, C) row-major tokens -> (B, C, h, w)."""
    b, n, c = x.shape
    return x.transpose(1, 2).reshape(b, c, *hw)


def region_to_tokens(region: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Region (B, 1, H, W) in [0, 1] -> (B, N, 1) token coverage in [0, 1] (area average over each patch)."""
    r = F.adaptive_avg_pool2d(region.float(), grid)
    return r.flatten(2).transpose(1, 2)


class ConditionStream(nn.Module):
    """The factorised condition of seed 002: *what* (semantic tokens: the instruction's text hidden states) and
    *where* (spatial tokens: the region, with the source image's latents it acts on), fused by letting every
    spatial token attend to the semantic tokens.

    Inputs: ``text`` (B, L, text_dim) instruction hidden states, ``source`` (B, C, h, w) scaled source latents,
    ``region`` (B, 1, h, w) in [0, 1] at latent resolution. Output: (B, N, adapter_dim) fused condition, one per
    image token (patch ``patch`` of the latents).
    """

    def __init__(self, text_dim: int, latent_channels: int, patch: int, num_tokens: int, dim: int, heads: int = 4):
        super().__init__()
        self.semantic = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, dim))
        self.source = nn.Conv2d(latent_channels, dim, patch, stride=patch)
        self.where = nn.Conv2d(1, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, num_tokens, dim))
        self.attn = nn.MultiheadAttention(dim, heads if dim % heads == 0 else 1, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, text: torch.Tensor, source: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        sem = self.semantic(text)
        spatial = (self.source(source) + self.where(region)).flatten(2).transpose(1, 2) + self.pos
        fused = spatial + self.attn(self.norm(spatial), sem, sem, need_weights=False)[0]
        return fused + self.mlp(self.norm(fused))


class BlockAdapter(nn.Module):
    """A lightweight adapter on one frozen transformer block's image tokens: ``up(GELU(down(LN(h)) + c))``, the
    output projection zero-initialised (an untrained adapter adds exactly 0).

    h: (B, N, width) the block's output image tokens; c: (B, N, dim) the fused condition. Returns (B, N, width)."""

    def __init__(self, width: int, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.down = nn.Linear(width, dim)
        self.up = nn.Linear(dim, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.up(F.gelu(self.down(self.norm(h)) + c))


class SpatialGate(nn.Module):
    """Routes an adapter's output into the intended area: ``g = region * sigmoid(w . [LN(h), c] + b)`` per token,
    so ``g`` is exactly 0 wherever the region is 0 and the learned factor decides how much of the adapter passes
    inside (starting near 0.88: bias 2).

    h: (B, N, width); c: (B, N, dim); region: (B, N, 1) in [0, 1]. Returns (B, N, 1) in [0, 1]."""

    def __init__(self, width: int, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.proj = nn.Linear(width + dim, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.constant_(self.proj.bias, 2.0)

    def forward(self, h: torch.Tensor, c: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        return region * torch.sigmoid(self.proj(torch.cat([self.norm(h), c], dim=-1)))


class MaskPredictor(nn.Module):
    """A thin head grounding the edit region from the instruction and the source image: it reads the frozen DiT's
    image tokens of a pass over the clean source latents with the instruction as prompt (joint attention has
    already related the words to the patches), upsamples them to latent resolution beside the source latents and
    predicts a logit per latent cell.

    feats: (B, N, width) frozen DiT image tokens (no gradient needed); source: (B, C, h, w) scaled latents.
    Returns logits (B, 1, h, w) (sigmoid = region probability at latent resolution)."""

    def __init__(self, width: int, latent_channels: int, grid: tuple[int, int], dim: int = 64):
        super().__init__()
        self.grid = tuple(grid)
        self.proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))
        self.head = nn.Sequential(
            nn.Conv2d(dim + latent_channels, dim, 3, padding=1), nn.GELU(),
            nn.Conv2d(dim, dim, 3, padding=1), nn.GELU(),
            nn.Conv2d(dim, 1, 1),
        )

    def forward(self, feats: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        g = tokens_to_grid(self.proj(feats), self.grid)
        g = F.interpolate(g, size=source.shape[-2:], mode="nearest")
        return self.head(torch.cat([g, source], dim=1))


def mask_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The MaskPredictor's auxiliary loss: BCE + soft Dice. logits, target: (B, 1, h, w); target in [0, 1]."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).flatten(1).sum(-1)
    dice = 1 - (2 * inter + 1) / (p.flatten(1).sum(-1) + target.flatten(1).sum(-1) + 1)
    return bce + dice.mean()


def changed_cells(source: torch.Tensor, target: torch.Tensor, size: tuple[int, int], threshold: float) -> torch.Tensor:
    """Where the edit actually changes the image, at latent resolution: (B, 1, h, w) in {0, 1}.
    source, target: (B, 3, H, W) in [-1, 1]; a cell changes when any of its pixels' mean absolute RGB difference
    (in [0, 1] units) exceeds ``threshold``."""
    diff = ((target - source).abs().mean(1, keepdim=True) / 2 > threshold).float()
    return F.adaptive_max_pool2d(diff, size)


def region_aware_flow_loss(pred: torch.Tensor, target: torch.Tensor, changed: torch.Tensor, weight: float) -> torch.Tensor:
    """Seed 002's Region-Aware Loss on the flow-matching objective: squared error per latent cell, weighted
    ``1 + weight`` where the image changes (``changed``, (B, 1, h, w) in {0, 1}) and 1 elsewhere, normalised by the
    weights' sum so the scale does not depend on the region's size. pred, target: (B, C, h, w)."""
    w = 1.0 + weight * changed
    err = (pred.float() - target.float()).pow(2).mean(1, keepdim=True)
    return (err * w).sum() / w.sum()
