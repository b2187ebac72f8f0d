"""Training losses of seed 001 (section 3.3): semantic alignment (eqs. 4-6) and CLIP supervision
through the frozen generator (eqs. 7-10), plus the differentiable soft-mask composite that lets the
CLIP losses reach the region predictor.

Embeddings are (B, D) float; patch features (B, N, D); images (B, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(a, b)`` per row: (B,)."""
    return 1.0 - F.cosine_similarity(a, b, dim=-1)


def semantic_alignment_loss(sem_edited, text_target, sem_original, text_source) -> torch.Tensor:
    """Eq. 6: ``L_semEdited + L_semOriginal`` = (1 - cos(f_sem(F_Editedimg), E_t(t_e)))
    + (1 - cos(f_sem(F_img), E_t(t_src))), averaged over the batch."""
    return (cosine_distance(sem_edited, text_target) + cosine_distance(sem_original, text_source)).mean()


def clip_global_loss(img_res, text_target) -> torch.Tensor:
    """Eq. 7: ``1 - cos(E_I(res), E_T(t_e))``."""
    return cosine_distance(img_res, text_target).mean()


def clip_directional_loss(img_res, img_src, text_target, text_source) -> torch.Tensor:
    """Eq. 8: ``1 - cos(E_I(res) - E_I(src), E_T(t_e) - E_T(t_src))``."""
    return cosine_distance(img_res - img_src, text_target - text_source).mean()


def clip_contrastive_loss(img_res, text_target, text_negatives, valid, logit_scale) -> torch.Tensor:
    """Eq. 7 in CLIP's contrastive form (our addition): cross-entropy of CLIP classifying the composite
    as its target caption among that sample's negative captions (what a wrong region would produce).

    img_res (B, D), text_target (B, D), text_negatives (B, K, D) padded, valid (B, K) bool marking real
    negatives, logit_scale: CLIP's ``exp(logit_scale)``. Samples without negatives are left out; 0 when
    no sample has one.
    """
    has = valid.any(1)
    if not has.any():
        return img_res.sum() * 0
    cands = F.normalize(torch.cat([text_target[:, None], text_negatives], 1), dim=-1)  # (B, 1+K, D)
    logits = logit_scale * (F.normalize(img_res, dim=-1)[:, None] * cands).sum(-1)  # (B, 1+K)
    keep = torch.cat([torch.ones_like(valid[:, :1]), valid], 1)
    logits = logits.masked_fill(~keep, float("-inf"))
    return F.cross_entropy(logits[has], torch.zeros(int(has.sum()), dtype=torch.long, device=logits.device))


def self_similarity(feats: torch.Tensor) -> torch.Tensor:
    """``Sim(F)_ij = F_i . F_j / (|F_i| |F_j|)``: (B, N, N)."""
    f = F.normalize(feats, dim=-1)
    return f @ f.transpose(1, 2)


def clip_structural_loss(patches_src, patches_res) -> torch.Tensor:
    """Eq. 9: ``||Sim(F_img) - Sim(F_res)||_2^2`` (mean over the N x N entries and the batch)."""
    return (self_similarity(patches_src) - self_similarity(patches_res)).pow(2).mean()


def soft_composite(source: torch.Tensor, generated: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """``res = M * generated + (1 - M) * source`` with the soft region M (B, 1, H, W) in [0, 1].

    The generator runs without gradient (it is frozen and sampled), but this blend is differentiable in
    ``region``, so the CLIP losses on ``res`` reach the region predictor: the predictor learns where the
    generated content helps the target description and where keeping the source does.
    """
    return region * generated + (1.0 - region) * source


def region_area_loss(region: torch.Tensor) -> torch.Tensor:
    """Mean region probability: a small penalty keeps regions tight (edits touch as little as possible)."""
    return region.mean()


def presence_loss(logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the presence head: ``logits`` (B,) against ``present`` (B,) in {0, 1}
    (1: the instruction's referent is in the image, as the caption says). Scalar."""
    return F.binary_cross_entropy_with_logits(logits, present.float())
