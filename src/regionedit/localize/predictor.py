"""The learnable multi-scale edit region of "Beyond Editing Pairs" (seed 001, section 3.2).

Frozen CLIP patch features ``F_img`` (N x d) and frozen instruction features ``F_ins`` (M x d) are
fused by cross-attention (image queries, instruction keys/values; eq. 1) into ``F_Editedimg``, refined by
self-attention (eq. 2) into ``F_imgRegion``, and a token-wise MLP + sigmoid (eq. 3) gives the region
probability of each patch. Our additions, both learned from pixels and text only:

* **multi-scale**: the fused tokens are also average-pooled to coarser grids (2x, 4x); each scale has its
  own token-wise MLP and the logits are upsampled and mixed with learned per-patch scale weights, so one
  predictor covers regions from a small object to the whole background;
* **presence** (optional): an attention-pooled head over ``F_imgRegion`` (plus the region's peak and
  mean logit) answers "does the instruction's referent exist in this image?", so an absent referent gives
  "no edit" instead of a region on the closest look-alike; trained from labels the caption text implies
  (an instruction naming an object the caption lacks), never from masks;
* **pixel refinement**: the patch-grid logits are upsampled to image size and refined by a small
  convolution over ``[logits, RGB]``, so region edges follow image edges (the CLIP grid is 4 px here,
  14 px for ViT-L/14).

Tensor conventions: images ``(B, 3, H, W)`` float in ``[-1, 1]``, RGB, row 0 at the top; regions
``(B, 1, H, W)`` float probabilities in ``[0, 1]`` in the same pixel frame.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass
class RegionPredictorConfig:
    image_dim: int = 128  # width of the CLIP patch features (after visual projection)
    instruction_dim: int = 128  # width of the instruction-encoder features
    clip_dim: int = 128  # CLIP joint embedding width (target of the semantic alignment network)
    dim: int = 128  # d: width of the fusion (eqs 1-3)
    heads: int = 4  # attention heads
    mlp_ratio: int = 2  # hidden width of the token-wise MLP, as a multiple of d
    scales: tuple[int, ...] = (1, 2, 4)  # pooling factors of the multi-scale region heads
    refine_channels: int = 16  # width of the pixel refinement convolution (0 disables it)
    text_dim: int = 0  # width of CLIP text token features of the instruction joined to F_ins (0: T5 only)
    init_logit: float = -3.0  # initial region logit: regions start nearly empty and grow where the losses ask
    presence: bool = False  # a presence head: is the instruction's referent in the image at all? ("no edit" if not)

    @classmethod
    def from_dict(cls, d: dict) -> "RegionPredictorConfig":
        """From a saved config (config.json or a training checkpoint): unknown keys (``_class_name``,
        ``threshold``) are ignored, ``scales`` may be a list."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "scales" in kw:
            kw["scales"] = tuple(kw["scales"])
        return cls(**kw)


class CrossAttentionBlock(nn.Module):
    """Pre-norm attention with a residual: ``x + Attn(LN(x), LN(ctx), LN(ctx))`` (eq. 1 / eq. 2)."""

    def __init__(self, dim: int, heads: int, cross: bool = True):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross else None  # self-attention reuses the query norm
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x, ctx=None, ctx_mask=None):
        q = self.norm_q(x)
        kv = q if self.norm_kv is None else self.norm_kv(ctx)
        out, _ = self.attn(q, kv, kv, key_padding_mask=ctx_mask, need_weights=False)
        return x + out


class RegionPredictor(nn.Module):
    """Predict the edit region from CLIP patch features and instruction features.

    forward(f_img, f_ins, ins_mask=None, pixels=None, f_txt=None, txt_mask=None) -> dict with
        ``region``: (B, 1, H, W) probabilities in [0, 1] (H, W = pixels' size, else the patch grid),
        ``region_logits``: the same before the sigmoid,
        ``patch_region``: (B, 1, g, g) patch-grid probabilities (eq. 3, multi-scale mixed),
        ``f_edited``: (B, N, d) F_Editedimg (eq. 1), ``f_region``: (B, N, d) F_imgRegion (eq. 2),
        and with ``config.presence``: ``presence_logit`` (B,) and ``presence`` (B,) in [0, 1].
    """

    threshold: float | None = None  # the calibrated region threshold of a loaded predictor, if any
    presence_threshold: float | None = None  # the calibrated presence threshold, if any
    verify_threshold: float | None = None  # the calibrated CLIP referent-check threshold of the editor, if any
    # thresholds calibrated for the learned parts alone (an Editor without priors), e.g. {"threshold": 0.4,
    # "presence_threshold": 0.3}: with priors the plugin's checks do part of the refusing, without them the
    # presence head must do it all, so the two are chosen separately (evaluation.region_thresholds)
    learned_thresholds: dict | None = None

    def __init__(self, config: RegionPredictorConfig | None = None):
        super().__init__()
        self.config = c = config or RegionPredictorConfig()
        self.proj_img = nn.Linear(c.image_dim, c.dim)
        self.proj_ins = nn.Linear(c.instruction_dim, c.dim)
        # optional second instruction view: CLIP's text tokens (colour and shape words grounded in the same
        # space as the image patches); their keys/values join the instruction encoder's in eq. 1
        self.proj_txt = nn.Linear(c.text_dim, c.dim) if c.text_dim else None
        self.cross = CrossAttentionBlock(c.dim, c.heads)  # eq. 1
        self.self_attn = CrossAttentionBlock(c.dim, c.heads, cross=False)  # eq. 2
        self.heads = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, c.mlp_ratio * c.dim), nn.GELU(), nn.Linear(c.mlp_ratio * c.dim, 1))
            for _ in c.scales
        )  # eq. 3, one token-wise MLP per scale
        self.scale_weights = nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, len(c.scales)))
        for head in self.heads:
            nn.init.constant_(head[-1].bias, c.init_logit)
        if c.refine_channels:
            self.refine = nn.Sequential(
                nn.Conv2d(4, c.refine_channels, 3, padding=1), nn.GELU(),
                nn.Conv2d(c.refine_channels, c.refine_channels, 3, padding=1), nn.GELU(),
                nn.Conv2d(c.refine_channels, 1, 3, padding=1),
            )
            # starts close to plain upsampling (small, not zero, so every layer gets a gradient)
            nn.init.normal_(self.refine[-1].weight, std=1e-3)
            nn.init.zeros_(self.refine[-1].bias)
        else:
            self.refine = None
        self.presence_head = PresenceHead(c.dim, c.heads) if c.presence else None

    def fuse(self, f_img, f_ins, ins_mask=None, f_txt=None, txt_mask=None):
        """Eqs. 1-2: ``(F_Editedimg, F_imgRegion)``, each (B, N, d)."""
        x = self.proj_img(f_img)  # (B, N, d)
        ctx = self.proj_ins(f_ins)  # (B, M, d)
        if ins_mask is None:
            ins_mask = torch.ones(ctx.shape[:2], dtype=torch.bool, device=ctx.device)
        if self.proj_txt is not None:
            if f_txt is None:
                raise ValueError("this region predictor also reads CLIP text features of the instruction: pass f_txt "
                                 "(regionedit.localize.features.instruction_text_features)")
            ctx = torch.cat([ctx, self.proj_txt(f_txt)], 1)  # (B, M + L, d)
            if txt_mask is None:
                txt_mask = torch.ones(f_txt.shape[:2], dtype=torch.bool, device=ctx.device)
            ins_mask = torch.cat([ins_mask.bool(), txt_mask.bool()], 1)
        pad = ~ins_mask.bool()
        f_edited = self.cross(x, ctx, pad)  # (B, N, d)
        f_region = self.self_attn(f_edited)  # (B, N, d)
        return f_edited, f_region

    def forward(self, f_img, f_ins, ins_mask=None, pixels=None, f_txt=None, txt_mask=None) -> dict[str, torch.Tensor]:
        f_edited, f_region = self.fuse(f_img, f_ins, ins_mask, f_txt, txt_mask)
        b, n, d = f_region.shape
        g = int(math.isqrt(n))
        if g * g != n:
            raise ValueError(f"expected a square patch grid, got {n} patch tokens (drop the CLS token first)")
        grid = f_region.transpose(1, 2).reshape(b, d, g, g)  # (B, d, g, g)
        logits = []
        for s, head in zip(self.config.scales, self.heads):
            pooled = F.avg_pool2d(grid, s) if s > 1 and g % s == 0 else grid
            tok = pooled.flatten(2).transpose(1, 2)  # (B, (g/s)^2, d)
            gs = pooled.shape[-1]
            lg = head(tok).transpose(1, 2).reshape(b, 1, gs, gs)
            logits.append(F.interpolate(lg, size=(g, g), mode="bilinear", align_corners=False) if gs != g else lg)
        w = self.scale_weights(f_region).softmax(-1).transpose(1, 2).reshape(b, len(logits), g, g)
        patch_logits = (torch.cat(logits, 1) * w).sum(1, keepdim=True)  # (B, 1, g, g)
        out = {"f_edited": f_edited, "f_region": f_region, "patch_region": patch_logits.sigmoid()}
        if self.presence_head is not None:
            out["presence_logit"] = self.presence_head(f_region, patch_logits)
            out["presence"] = out["presence_logit"].sigmoid()
        if pixels is not None:
            h, wd = pixels.shape[-2:]
            up = F.interpolate(patch_logits, size=(h, wd), mode="bilinear", align_corners=False)
            if self.refine is not None:
                px = F.interpolate(pixels, size=(h, wd), mode="bilinear", align_corners=False) if pixels.shape[-2:] != (h, wd) else pixels
                up = up + self.refine(torch.cat([up, px], 1))
            out["region_logits"] = up
        else:
            out["region_logits"] = patch_logits
        out["region"] = out["region_logits"].sigmoid()
        return out


class PresenceHead(nn.Module):
    """``(F_imgRegion (B, N, d), patch logits (B, 1, g, g)) -> presence logit (B,)``: attention pooling with
    a learned query, joined with the region's peak and mean logit, then a small MLP."""

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim + 2, dim), nn.GELU(), nn.Linear(dim, 1))

    def forward(self, f_region: torch.Tensor, patch_logits: torch.Tensor) -> torch.Tensor:
        flat = patch_logits.flatten(1)
        stats = torch.stack([flat.amax(1), flat.mean(1)], 1)  # (B, 2)
        return self.mlp(torch.cat([_attention_pool(self, f_region), stats], 1))[:, 0]


class SemanticAlignment(nn.Module):
    """``f_sem``: projects spatial features (B, N, d) to the CLIP embedding space (B, clip_dim)
    by attention pooling (a learned query) and a linear map (section 3.3, eqs. 4-5)."""

    def __init__(self, dim: int, clip_dim: int, heads: int = 4):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.out = nn.Linear(dim, clip_dim)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.out(_attention_pool(self, feats))


def _attention_pool(m: nn.Module, feats: torch.Tensor) -> torch.Tensor:
    """Attention pooling with a learned query, shared by :class:`PresenceHead` and :class:`SemanticAlignment`
    (each owns ``query`` (1, 1, d), ``norm`` and ``attn``): (B, N, d) -> (B, d)."""
    kv = m.norm(feats)
    pooled, _ = m.attn(m.query.expand(feats.shape[0], -1, -1), kv, kv, need_weights=False)
    return pooled[:, 0]


def save_region_predictor(pred, folder: Path, state: dict) -> None:
    """Write ``folder/config.json``, fp16 ``model.safetensors`` and ``training_state.json``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.asdict(pred.config)
    (folder / "config.json").write_text(json.dumps({"_class_name": "RegionPredictor", **cfg}, indent=2) + "\n")
    tmp = folder / "model.safetensors.tmp"
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in pred.state_dict().items()}, str(tmp))
    tmp.replace(folder / "model.safetensors")
    (folder / "training_state.json").write_text(json.dumps(state, indent=2) + "\n")


def load_region_predictor(folder: Path):
    """Load a predictor written by :func:`save_region_predictor` (float32, eval mode)."""
    from safetensors.torch import load_file

    cfg = json.loads((Path(folder) / "config.json").read_text())
    pred = RegionPredictor(RegionPredictorConfig.from_dict(cfg))
    pred.threshold = cfg.get("threshold")  # calibrated on held-out data (benchmarks/region.py --write-card)
    pred.presence_threshold = cfg.get("presence_threshold")  # likewise, for predictors with a presence head
    pred.verify_threshold = cfg.get("verify_threshold")  # the world prior's CLIP referent check (world/priors/verify.py)
    pred.learned_thresholds = cfg.get("learned_thresholds")  # calibrated for an Editor without priors
    sd = {k: v.float() for k, v in load_file(str(Path(folder) / "model.safetensors")).items()}
    pred.load_state_dict(sd)
    return pred.eval()
