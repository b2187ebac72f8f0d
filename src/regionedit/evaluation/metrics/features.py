"""Feature metrics over the embeddings of an explicit, named :class:`~.extractors.FeatureExtractor`:
:func:`clip_i`, :func:`clip_t`, :func:`clip_dir`, :func:`dino_sim`, and :func:`frechet_distance`
(the FID formula over any features)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .base import _raw_batch, _reduce


def _cosine(u, v) -> np.ndarray:
    """Row-wise cosine of (B, D) embeddings in float64, as ``torch.nn.functional.cosine_similarity``
    (eps 1e-8): a zero vector gives 0."""
    u = torch.as_tensor(u).to(torch.float64)
    v = torch.as_tensor(v).to(torch.float64)
    if u.shape != v.shape:
        raise ValueError(f"embedding shapes differ: {tuple(u.shape)} vs {tuple(v.shape)}")
    return F.cosine_similarity(u, v, dim=-1, eps=1e-8).numpy()


def _captions(captions, n: int, what: str) -> list[str]:
    if isinstance(captions, str):
        return [captions] * n
    captions = list(captions)
    if len(captions) != n:
        raise ValueError(f"{what}: {len(captions)} captions for {n} images")
    return captions


def _batch_len(images, what: str) -> int:
    return _raw_batch(images, what).shape[0]


def clip_i(ext, edited, target, reduce: bool = True):
    """CLIP-I: cosine similarity of the image embeddings of the edited and the target image.

    Definition: ``cos(ext.image_embed(edited)_i, ext.image_embed(target)_i)`` per pair, mean over
    pairs. Reference: MagicBrush ``eval_clip_i`` (``1 - scipy.spatial.distance.cosine`` of
    ``encode_image`` of the pair; CLIP ViT-B/32 there). Which CLIP and which resolution is
    ``ext.name`` / ``ext.config``: report it.

    Args:
        ext: a :class:`FeatureExtractor` (e.g. :func:`clip_extractor`).
        edited, target: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``); equal
            batch sizes (image sizes may differ: the extractor resizes).
        reduce: mean (float) or per-pair ``(B,)`` array.

    Returns:
        In ``[-1, 1]``; 1 when ``edited`` equals ``target``.
    """
    n = _batch_len(edited, "edited")
    if _batch_len(target, "target") != n:
        raise ValueError("edited and target must have the same number of images")
    return _reduce(_cosine(ext.image_embed(edited), ext.image_embed(target)), reduce)


def clip_t(ext, edited, captions, reduce: bool = True):
    """CLIP-T (Emu Edit's CLIPout, MagicBrush's CLIP-T): image-caption cosine similarity.

    Definition: ``cos(ext.image_embed(edited)_i, ext.text_embed(captions)_i)`` per image (the
    caption describing the *desired output*), mean over images. Unscaled cosine in ``[-1, 1]``
    (the "CLIPScore" of Hessel et al. is ``2.5 * max(cos, 0)``, and torchmetrics' ``CLIPScore`` is
    ``100 * max(cos, 0)``: not these numbers). Reference: MagicBrush ``eval_clip_t`` (``1 -
    cosine distance`` of ``encode_image`` and ``encode_text`` of the target caption). Which caption
    matters: MagicBrush's published numbers use each turn's *local* description of its output
    (``local_descriptions.json``), not the global one; the harness reports both (``clip_t_local``,
    ``clip_t``).

    Args:
        ext: an extractor with a text encoder.
        edited: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``).
        captions: one string (used for every image) or ``B`` strings.
        reduce: mean (float) or per-image array.

    Returns:
        In ``[-1, 1]``: a float, or a ``(B,)`` float64 array with ``reduce=False``.
    """
    n = _batch_len(edited, "edited")
    caps = _captions(captions, n, "captions")
    return _reduce(_cosine(ext.image_embed(edited), ext.text_embed(caps)), reduce)


def clip_dir(ext, source, edited, src_captions, tgt_captions, reduce: bool = True):
    """CLIP directional similarity (Emu Edit's CLIPdir, InstructPix2Pix's directional similarity).

    Definition: with unit-normalised embeddings ``I(.) = normalize(ext.image_embed(.))`` and
    ``T(.) = normalize(ext.text_embed(.))``, per sample
    ``cos(I(edited) - I(source), T(tgt_caption) - T(src_caption))``, mean over samples. Normalising
    before the difference is what InstructPix2Pix's ``ClipSimilarity`` does. A zero difference
    (unchanged image, or identical captions) gives 0 (``torch`` ``cosine_similarity`` with eps),
    not NaN. Swapping the captions (or the images) flips the sign.

    Args:
        ext: an extractor with a text encoder.
        source, edited: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same batch size.
        src_captions, tgt_captions: one string or ``B`` strings each.
        reduce: mean (float) or per-sample array.

    Returns:
        In ``[-1, 1]`` (0 for a zero direction): a float, or a ``(B,)`` float64 array.
    """
    n = _batch_len(source, "source")
    if _batch_len(edited, "edited") != n:
        raise ValueError("source and edited must have the same number of images")
    src_t = F.normalize(ext.text_embed(_captions(src_captions, n, "src_captions")).double(), dim=-1)
    tgt_t = F.normalize(ext.text_embed(_captions(tgt_captions, n, "tgt_captions")).double(), dim=-1)
    src_i = F.normalize(torch.as_tensor(ext.image_embed(source)).double(), dim=-1)
    edt_i = F.normalize(torch.as_tensor(ext.image_embed(edited)).double(), dim=-1)
    return _reduce(_cosine(edt_i - src_i, tgt_t - src_t), reduce)


def dino_sim(ext, a, b, reduce: bool = True):
    """DINO similarity: cosine of the DINO CLS embeddings of two images.

    Definition: ``cos(ext.image_embed(a)_i, ext.image_embed(b)_i)`` per pair, mean over pairs, with
    ``ext`` a DINO extractor (:func:`dino_extractor`: final-layer-normed CLS token). Reference:
    MagicBrush "DINO" (``eval_clip_i(metric='dino')`` with ``dino_vits16``, Resize 256 bicubic,
    CenterCrop 224, ImageNet normalisation), which compares edited and ground-truth images; Emu
    Edit's DINO compares edited and *source* images. Say which.

    Args:
        ext: a :class:`FeatureExtractor`.
        a, b: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same batch size.
        reduce: mean (float) or per-pair array.

    Returns:
        In ``[-1, 1]``, 1 for identical images: a float, or a ``(B,)`` float64 array.
    """
    n = _batch_len(a, "a")
    if _batch_len(b, "b") != n:
        raise ValueError("a and b must have the same number of images")
    return _reduce(_cosine(ext.image_embed(a), ext.image_embed(b)), reduce)


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    Definition: ``|mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2))`` with ``mu`` the
    feature means and ``S`` the **unbiased** covariances (divisor ``N - 1``, as ``numpy.cov`` in
    pytorch-fid / torch-fidelity and torchmetrics). ``Tr((S_a S_b)^(1/2))`` is computed in float64
    without scipy as ``sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2)))`` (that matrix is symmetric PSD and
    similar to ``S_a S_b``; ``S_a^(1/2)`` by ``eigh``, negative round-off eigenvalues clamped to 0).
    The result is clamped at 0 (it is a squared distance). It is "FID" only with Inception-v3
    pool3 features of 299 px images (:func:`fid`); over other features (CLIP, DINO) report it as
    FD_<features>.

    Args:
        feats_a, feats_b: ``(N_a, D)`` and ``(N_b, D)`` arrays or tensors, ``N >= 2`` each.

    Returns:
        The squared Fréchet distance (float, >= 0).
    """
    a = (feats_a.detach() if torch.is_tensor(feats_a) else torch.as_tensor(np.asarray(feats_a))).to(torch.float64)
    b = (feats_b.detach() if torch.is_tensor(feats_b) else torch.as_tensor(np.asarray(feats_b))).to(torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N, D) feature sets with equal D, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("each feature set needs at least 2 samples for a covariance")
    d = a.shape[1]
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = torch.cov(a.T, correction=1).reshape(d, d)
    cov_b = torch.cov(b.T, correction=1).reshape(d, d)
    w, v = torch.linalg.eigh(cov_a)
    sqrt_a = (v * w.clamp(min=0).sqrt()) @ v.T
    m = sqrt_a @ cov_b @ sqrt_a
    m = 0.5 * (m + m.T)
    tr_sqrt = torch.linalg.eigvalsh(m).clamp(min=0).sqrt().sum()
    value = ((mu_a - mu_b) ** 2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2.0 * tr_sqrt
    return max(0.0, float(value))

