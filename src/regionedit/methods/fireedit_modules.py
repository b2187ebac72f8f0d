"""Seed 003's building blocks (FireEdit, "Fine-grained Instruction-based Image Editing via Region-aware Vision
Language Model"): region proposals and region tokens, the mixed-modal vision-language encoder, Time-Aware Target
Injection (TATI) and Hybrid Visual Cross Attention (HVCA). Plain ``nn.Module`` s and functions with no backbone
inside; :mod:`.fireedit` feeds them from the frozen CLIP / VAE / text encoder and hooks HVCA into a frozen diffusers
``UNet2DConditionModel`` (InstructPix2Pix, 8 input channels).

Frames: images are ``(B, 3, S, S)`` in [-1, 1] at the UNet's native size ``S`` (row 0 at the top); region masks are
``(B, K, S, S)`` in [0, 1] (1 = inside) in the same frame; boxes are ``(x0, y0, x1, y1)`` in [0, 1] of the image's
width / height; CLIP patch tokens are row-major over their ``(gh, gw)`` grid. The condition sequence is
``[image tokens (g*g), region tokens (K, when used), text tokens (L)]`` with token types 0, 1, 2.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .trainable import DictConfig

IMAGE_TYPE, REGION_TYPE, TEXT_TYPE = 0, 1, 2  # token-type ids of the mixed-modal sequence


@dataclasses.dataclass
class FireEditConfig(DictConfig):
    """Architecture, ablation switches, training draws and inference settings (saved in ``config.json``).

    vl_dim / vl_layers / vl_heads: width, depth and heads of the mixed-modal VL encoder (a ``transformers.BertModel``
        fed ``inputs_embeds``).
    vl_image_grid: the frozen CLIP patch grid is average-pooled to ``g x g`` image tokens for the VL encoder.
    num_regions: region-token slots K (proposals beyond K are dropped, missing ones masked out).
    use_region_tokens: region tokens in the VL sequence (ablation off: ``[image, text]`` only).
    use_tati: Time-Aware Target Injection (ablation off: the condition weight is 1 at every timestep).
    use_hvca: Hybrid Visual Cross Attention after the UNet's attention blocks (ablation off: no such modules).
    tati_hidden / tati_init_bias: TATI's MLP width and its output bias at initialisation (2.0: w ~ 0.88).
    hvca_heads: heads of every HVCA cross-attention (1 when the level's width is not divisible by it).
    box_jitter: training proposals, the jittered copy of the true region's box moves each side by up to this share
        of the box's size.
    distractor_prob: training proposals, each remaining slot holds a random distractor box with this probability.
    no_region_prob: training proposals, share of samples with no proposal at all (a localizer that finds nothing).
    cfg_drop: InstructPix2Pix guidance dropout: this share of samples lose the condition, as many the source image,
        as many both.
    mask_threshold: a localizer's probability map is the region where it is >= this.
    steps / guidance_scale / image_guidance_scale: DDIM steps and InstructPix2Pix's text / image guidance.
    unet_subfolder: the frozen 8-channel UNet in the model folder.
    init_seed: seed of the initialisation (HVCA's and the condition's output projections start at zero).
    """

    vl_dim: int = 128
    vl_layers: int = 2
    vl_heads: int = 4
    vl_image_grid: int = 8
    num_regions: int = 4
    use_region_tokens: bool = True
    use_tati: bool = True
    use_hvca: bool = True
    tati_hidden: int = 64
    tati_init_bias: float = 2.0
    hvca_heads: int = 4
    box_jitter: float = 0.1
    distractor_prob: float = 0.5
    no_region_prob: float = 0.1
    cfg_drop: float = 0.05
    mask_threshold: float = 0.5
    steps: int = 20
    guidance_scale: float = 4.0
    image_guidance_scale: float = 1.5
    unet_subfolder: str = "unet_ip2p"
    init_seed: int = 0

    def __post_init__(self) -> None:
        if self.vl_dim < 1 or self.vl_layers < 1 or self.vl_heads < 1 or self.vl_dim % self.vl_heads:
            raise ValueError(f"vl_dim ({self.vl_dim}) must be a positive multiple of vl_heads ({self.vl_heads}), "
                             f"vl_layers ({self.vl_layers}) >= 1")
        if self.num_regions < 2 or self.vl_image_grid < 1:
            raise ValueError(f"num_regions must be >= 2 (the region and its box), got {self.num_regions}; "
                             f"vl_image_grid >= 1, got {self.vl_image_grid}")
        for name in ("box_jitter", "distractor_prob", "no_region_prob", "mask_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.cfg_drop <= 1 / 3:
            raise ValueError(f"cfg_drop must be in [0, 1/3] (three dropout cases), got {self.cfg_drop}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")



# -- region proposals ------------------------------------------------------------------------------------------
class Proposals(NamedTuple):
    """K region proposals per image: ``masks`` (B, K, S, S) in [0, 1], ``boxes`` (B, K, 4) ``(x0, y0, x1, y1)`` in
    [0, 1], ``valid`` (B, K) bool (False: an empty slot, masked out of the VL encoder's attention)."""

    masks: torch.Tensor
    boxes: torch.Tensor
    valid: torch.Tensor


def mask_boxes(masks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Bounding boxes (..., 4) ``(x0, y0, x1, y1)`` in [0, 1] of masks (..., H, W) ``>= threshold`` (all 0 where a
    mask is empty). x1 / y1 are exclusive edges (a full mask gives (0, 0, 1, 1))."""
    h, w = masks.shape[-2:]
    on = masks >= threshold
    rows, cols = on.any(-1), on.any(-2)  # (..., H), (..., W)
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    big = max(h, w) + 1
    y0 = torch.where(rows, ar_h, big).amin(-1)
    y1 = torch.where(rows, ar_h, -1).amax(-1) + 1
    x0 = torch.where(cols, ar_w, big).amin(-1)
    x1 = torch.where(cols, ar_w, -1).amax(-1) + 1
    box = torch.stack([x0 / w, y0 / h, x1 / w, y1 / h], -1).float()
    return torch.where(rows.any(-1, keepdim=True), box, torch.zeros_like(box))


def box_masks(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Rectangles (..., size, size) in {0, 1} of boxes (..., 4) in [0, 1] (a pixel is inside when its centre is)."""
    c = (torch.arange(size, dtype=torch.float32, device=boxes.device) + 0.5) / size
    x0, y0, x1, y1 = (boxes[..., i, None] for i in range(4))
    inx = (c >= x0) & (c < x1)  # (..., S) over columns
    iny = (c >= y0) & (c < y1)
    return (iny[..., :, None] & inx[..., None, :]).float()


def training_proposals(region: torch.Tensor, num: int, generator: torch.Generator, jitter: float = 0.1,
                       distractor_prob: float = 0.5, no_region_prob: float = 0.1) -> Proposals:
    """Proposals built from a training sample, as a detector would propose them (the VL encoder must find which one
    the instruction means): the true region (its mask), its box jittered by up to ``jitter`` of the box size per
    side, and in each of the other ``num - 2`` slots a random distractor box with probability ``distractor_prob``;
    the slots are shuffled; with probability ``no_region_prob`` a sample has no proposal at all.

    region: (B, 1, S, S) in [0, 1], the true edit region. Draws, in order: the jitter (B, 4), the distractors
    (B, num - 2, 4 corners + 1 presence), the shuffle (B, num), the no-region switch (B,), all from ``generator``."""
    b, _, s, _ = region.shape
    true = region[:, 0].float()
    box = mask_boxes(true)  # (B, 4)
    wh = (box[:, 2:] - box[:, :2]).repeat(1, 2)
    jit = (box + (torch.rand(b, 4, generator=generator) * 2 - 1) * jitter * wh).clamp(0, 1)
    jit = torch.cat([torch.minimum(jit[:, :2], jit[:, 2:]), torch.maximum(jit[:, :2], jit[:, 2:])], -1)
    d = torch.rand(b, num - 2, 5, generator=generator)
    dist = torch.cat([torch.minimum(d[..., :2], d[..., 2:4]), torch.maximum(d[..., :2], d[..., 2:4])], -1)
    boxes = torch.cat([box[:, None], jit[:, None], dist], 1)  # (B, K, 4)
    masks = torch.cat([true[:, None], box_masks(boxes[:, 1:], s)], 1)  # the true mask, then rectangles
    has_true = (true >= 0.5).flatten(1).any(-1)
    valid = torch.cat([has_true[:, None].expand(b, 2), d[..., 4] < distractor_prob], 1)
    order = torch.rand(b, num, generator=generator).argsort(-1)
    none = torch.rand(b, generator=generator) < no_region_prob
    valid = valid & ~none[:, None]
    take = order[..., None]
    masks = torch.take_along_dim(masks, take[..., None], 1) * torch.take_along_dim(valid, order, 1)[..., None, None]
    boxes = torch.take_along_dim(boxes, take, 1)
    valid = torch.take_along_dim(valid, order, 1)
    return Proposals(masks, boxes * valid[..., None], valid)


def inference_proposals(region: torch.Tensor | None, num: int, size: int) -> Proposals:
    """Proposals at inference from a localizer's region (no ground truth): the region's mask and its box, the other
    slots empty (training also shows the encoder such sets: distractors are present only half the time). ``region``:
    (B, S, S) in {0, 1}, or None / empty for no proposal (every slot masked out)."""
    if region is None:
        z = torch.zeros(1, num, size, size)
        return Proposals(z, torch.zeros(1, num, 4), torch.zeros(1, num, dtype=torch.bool))
    r = region.float()
    b = r.shape[0]
    box = mask_boxes(r)
    present = (r >= 0.5).flatten(1).any(-1)
    masks = torch.zeros(b, num, size, size)
    masks[:, 0], masks[:, 1] = r, box_masks(box, size)
    boxes = torch.zeros(b, num, 4)
    boxes[:, 0], boxes[:, 1] = box, box
    valid = torch.zeros(b, num, dtype=torch.bool)
    valid[:, :2] = present[:, None]
    return Proposals(masks * valid[..., None, None], boxes, valid)


# -- region-aware mixed-modal encoding ------------------------------------------------------------------------
class RegionTokenEncoder(nn.Module):
    """One region token per proposal: the frozen CLIP patch features pooled inside its mask (area-weighted over the
    patch grid), projected, plus an embedding of its box ``(x0, y0, x1, y1, area)``; the "region" type embedding is
    the VL encoder's token type 1. Empty slots give 0.

    patches: (B, N, D) CLIP patch features on a (gh, gw) grid; proposals: :class:`Proposals`. Returns (B, K, dim)."""

    def __init__(self, clip_dim: int, dim: int):
        super().__init__()
        self.feature = nn.Sequential(nn.LayerNorm(clip_dim), nn.Linear(clip_dim, dim))
        self.box = nn.Sequential(nn.Linear(5, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, patches: torch.Tensor, grid: tuple[int, int], proposals: Proposals) -> torch.Tensor:
        m = F.adaptive_avg_pool2d(proposals.masks.to(patches.dtype), grid).flatten(2)  # (B, K, N)
        pooled = (m @ patches) / m.sum(-1, keepdim=True).clamp(min=1e-6)  # (B, K, D)
        b = proposals.boxes.to(patches.dtype)
        area = ((b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]))[..., None]
        tok = self.feature(pooled) + self.box(torch.cat([b, area], -1))
        return tok * proposals.valid[..., None].to(tok.dtype)


class MixedModalEncoder(nn.Module):
    """The region-aware mixed-modal encoder (seed 003 "Region-aware Mixed-Modal Encoding"): a miniature
    vision-language encoder (``transformers.BertModel`` from a small config, fed ``inputs_embeds``; its token-type
    embeddings mark image / region / text tokens) reading ``[image tokens, region tokens, text tokens]`` with full
    self-attention, so the words and the proposals ground each other.

    Inputs: ``patches`` (B, N, clip_dim) frozen CLIP patch features on a (gh, gw) grid (pooled to ``image_grid`` x
    ``image_grid`` tokens), ``text`` (B, L, text_dim) the frozen text encoder's states of the instruction,
    ``proposals`` (:class:`Proposals`, or None without region tokens). Returns ``(states (B, T, dim), condition
    (B, T, cross_dim))`` with ``T = image_grid**2 [+ K] + L``: the UNet's new ``encoder_hidden_states``,
    ``out(states)`` plus, at the text positions, the text encoder's states (the frozen UNet's own condition: with
    ``out`` zero-initialised an untrained encoder starts from it, the other positions at 0)."""

    def __init__(self, clip_dim: int, text_dim: int, cross_dim: int, text_len: int, config: FireEditConfig):
        super().__init__()
        from transformers import BertConfig, BertModel

        c = config
        self.image_grid = int(c.vl_image_grid)
        self.num_regions = int(c.num_regions) if c.use_region_tokens else 0
        self.text_len = int(text_len)
        self.length = self.image_grid ** 2 + self.num_regions + self.text_len
        self.image = nn.Sequential(nn.LayerNorm(clip_dim), nn.Linear(clip_dim, c.vl_dim))
        self.text = nn.Sequential(nn.LayerNorm(text_dim), nn.Linear(text_dim, c.vl_dim))
        self.regions = RegionTokenEncoder(clip_dim, c.vl_dim) if c.use_region_tokens else None
        self.vl = BertModel(BertConfig(vocab_size=2, hidden_size=c.vl_dim, num_hidden_layers=c.vl_layers,
                                       num_attention_heads=c.vl_heads, intermediate_size=2 * c.vl_dim,
                                       max_position_embeddings=self.length, type_vocab_size=3, hidden_dropout_prob=0.0,
                                       attention_probs_dropout_prob=0.0), add_pooling_layer=False)
        self.vl.embeddings.word_embeddings.requires_grad_(False)  # unused: the encoder reads inputs_embeds
        self.out = nn.Linear(c.vl_dim, cross_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.residual_text = text_dim == cross_dim

    def token_types(self, batch: int, device=None) -> torch.Tensor:
        """(B, T) long: 0 image, 1 region, 2 text."""
        t = torch.tensor([IMAGE_TYPE] * self.image_grid ** 2 + [REGION_TYPE] * self.num_regions
                         + [TEXT_TYPE] * self.text_len, device=device)
        return t[None].expand(batch, -1)

    def forward(self, patches: torch.Tensor, grid: tuple[int, int], text: torch.Tensor,
                proposals: Proposals | None) -> tuple[torch.Tensor, torch.Tensor]:
        b = patches.shape[0]
        g = self.image_grid
        img = F.adaptive_avg_pool2d(patches.transpose(1, 2).reshape(b, -1, *grid), (g, g)).flatten(2).transpose(1, 2)
        parts = [self.image(img)]  # (B, g*g, dim)
        keep = [torch.ones(b, g * g, dtype=torch.bool, device=patches.device)]
        if self.regions is not None:
            if proposals is None or proposals.valid.shape[1] != self.num_regions:
                raise ValueError(f"the encoder has {self.num_regions} region slots; pass Proposals with that many")
            parts.append(self.regions(patches, grid, proposals))
            keep.append(proposals.valid.to(patches.device))
        parts.append(self.text(text))
        keep.append(torch.ones(b, text.shape[1], dtype=torch.bool, device=patches.device))
        x = torch.cat(parts, 1)
        if x.shape[1] != self.length:
            raise ValueError(f"the VL sequence has {x.shape[1]} tokens, the encoder was built for {self.length} (text "
                             f"length {self.text_len}: pad the instruction to the tokenizer's model_max_length)")
        mask = torch.cat(keep, 1).long()
        states = self.vl(inputs_embeds=x, attention_mask=mask, token_type_ids=self.token_types(b, x.device)).last_hidden_state
        cond = self.out(states)
        if self.residual_text:
            cond = torch.cat([cond[:, :-self.text_len], cond[:, -self.text_len:] + text], 1)
        return states, cond


# -- time-aware target injection ------------------------------------------------------------------------------
class TimeAwareTargetInjection(nn.Module):
    """TATI (seed 003): the target condition's weight depends on the timestep. A small MLP on the UNet's sinusoidal
    timestep embedding gives a gate per condition token, ``w(t) = sigmoid(MLP(emb(t)))`` in (0, 1), and the UNet
    reads ``w(t) * c + (1 - w(t)) * c_null`` (:func:`inject`): early (noisy) steps and late (detail) steps can weigh
    the image, region and text tokens differently.

    t_emb: (B, time_dim) the UNet's ``time_proj(t)``. Returns w (B, num_tokens, 1)."""

    def __init__(self, time_dim: int, num_tokens: int, hidden: int = 64, init_bias: float = 2.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, num_tokens))
        nn.init.constant_(self.mlp[-1].bias, init_bias)

    def forward(self, t_emb: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(t_emb))[..., None]


def inject(condition: torch.Tensor, null: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``w * condition + (1 - w) * null``; condition, null: (B, T, C); w: (B, T, 1) (or broadcastable) in [0, 1]."""
    return w * condition + (1 - w) * null


# -- hybrid visual cross attention ----------------------------------------------------------------------------
def vae_pyramid_channels(vae_config, size: int) -> dict[int, int]:
    """{spatial size: channels} of the VAE encoder's feature maps for a ``size`` x ``size`` input: ``conv_in`` at
    ``size``, then each down block's output (halving except the last); where two maps share a size, the deeper."""
    ch = list(vae_config.block_out_channels)
    out = {size: ch[0]}
    s = size
    for i, c in enumerate(ch):
        if i < len(ch) - 1:
            s //= 2
        out[s] = c
    return out


def local_scale(pyramid_sizes, h: int) -> tuple[int, int]:
    """The VAE map a UNet level of spatial size ``h`` attends to and its fold factor: the smallest map at least one
    octave finer (``>= 2h``: the detail the latents lost), else the finest there is; ``(map size, k)`` with the map
    folded ``k x k`` into channels so each local token sits at one query position (k = 1: resampled to h)."""
    sizes = sorted(pyramid_sizes)
    finer = [s for s in sizes if s >= 2 * h]
    s = finer[0] if finer else sizes[-1]
    return s, (s // h if s >= h and s % h == 0 else 1)


def fold(x: torch.Tensor, h: int, k: int) -> torch.Tensor:
    """(B, C, s, s) -> (B, C * k * k, h, h): ``pixel_unshuffle`` by k (the map resampled to ``k * h`` first when it
    is not that size)."""
    if x.shape[-1] != k * h or x.shape[-2] != k * h:
        x = F.interpolate(x, size=(k * h, k * h), mode="bilinear", align_corners=False, antialias=True)
    return F.pixel_unshuffle(x, k) if k > 1 else x


class HybridVisualCrossAttention(nn.Module):
    """HVCA (seed 003) after one frozen UNet attention block: the block's output tokens attend to hybrid source-image
    features, global semantics (the frozen CLIP's patch tokens) and local detail (the frozen VAE encoder's map of
    the matching scale, folded to one token per query position), and ``out(attention)`` is added to the block's
    output. ``out`` is zero-initialised: an untrained HVCA adds exactly 0.

    h: (B, C, s, s) the block's output; global_tokens: (B, Ng, global_dim); local: (B, local_dim, s, s) (:func:`fold`).
    Returns the residual (B, C, s, s)."""

    def __init__(self, channels: int, global_dim: int, local_dim: int, size: int, heads: int = 4):
        super().__init__()
        self.size = int(size)
        self.norm = nn.LayerNorm(channels)
        self.pos = nn.Parameter(torch.randn(1, size * size, channels) * 0.02)  # shared by queries and local keys
        self.glob = nn.Sequential(nn.LayerNorm(global_dim), nn.Linear(global_dim, channels))
        self.local = nn.Sequential(nn.LayerNorm(local_dim), nn.Linear(local_dim, channels))
        self.kind = nn.Parameter(torch.randn(2, channels) * 0.02)  # global / local source embedding
        self.attn = nn.MultiheadAttention(channels, heads if channels % heads == 0 else 1, batch_first=True)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: torch.Tensor, global_tokens: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = h.shape
        q = self.norm(h.flatten(2).transpose(1, 2)) + self.pos  # (B, s*s, C)
        kv = torch.cat([self.glob(global_tokens) + self.kind[0],
                        self.local(local.flatten(2).transpose(1, 2)) + self.pos + self.kind[1]], 1)
        a = self.attn(q, kv, kv, need_weights=False)[0]
        return self.out(a).transpose(1, 2).reshape(b, c, hh, ww)


def unet_attention_sites(unet) -> list[tuple[str, nn.Module, int, int]]:
    """The frozen UNet's attention blocks HVCA follows: ``(name, module, channels, spatial size)`` for every module of
    the down / mid / up blocks' ``attentions`` lists, sizes from ``sample_size`` and the block's depth."""
    cfg = unet.config
    ch, n, s = list(cfg.block_out_channels), len(cfg.block_out_channels), int(cfg.sample_size)
    sites = []
    for i, blk in enumerate(unet.down_blocks):
        for j, a in enumerate(getattr(blk, "attentions", None) or []):
            sites.append((f"down_blocks.{i}.attentions.{j}", a, ch[i], s // 2 ** i))
    for j, a in enumerate(getattr(unet.mid_block, "attentions", None) or []):
        sites.append((f"mid_block.attentions.{j}", a, ch[-1], s // 2 ** (n - 1)))
    for i, blk in enumerate(unet.up_blocks):
        for j, a in enumerate(getattr(blk, "attentions", None) or []):
            sites.append((f"up_blocks.{i}.attentions.{j}", a, ch[::-1][i], s // 2 ** (n - 1 - i)))
    return sites
