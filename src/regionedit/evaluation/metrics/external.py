"""Metrics needing weights that are not bundled: :func:`lpips` and :func:`fid` (via torchmetrics);
both raise :class:`~.base.MetricUnavailable` naming what is missing and how to provide it."""

from __future__ import annotations

import functools

import numpy as np
import torch

from .base import MetricUnavailable, _pair, _raw_batch, _reduce

_LPIPS_BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}


@functools.lru_cache(maxsize=3)
def _lpips_metric(net: str):
    try:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        return LearnedPerceptualImagePatchSimilarity(net_type=net, reduction="mean", normalize=True).eval()
    except Exception as e:  # missing package, failed download, missing file
        raise MetricUnavailable(
            f"LPIPS ({net}) is unavailable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            "It needs torchmetrics with torchvision (`pip install torchmetrics torchvision`), the "
            f"ImageNet-pretrained torchvision {net} backbone weights ({_LPIPS_BACKBONE_FILES[net]} in "
            "$TORCH_HOME/hub/checkpoints, default ~/.cache/torch/hub/checkpoints; torchvision "
            "downloads it when there is network) and the LPIPS linear-layer weights (shipped with "
            "torchmetrics)."
        ) from e


def lpips(a, b, net: str = "alex", reduce: bool = True):
    """LPIPS (Zhang et al. 2018) via ``torchmetrics``' ``LearnedPerceptualImagePatchSimilarity``.

    Definition: torchmetrics' LPIPS (v0.1 linear layers) with the ``net`` backbone on images given
    in ``[0, 1]`` (``normalize=True``: scaled to ``[-1, 1]`` inside), at the images' own resolution;
    per pair, mean over pairs. Lower is more similar.

    Args:
        a, b: ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 (or float in ``[0, 1]``), same shape.
        net: ``"alex"`` (the LPIPS paper's default), ``"vgg"`` or ``"squeeze"``.
        reduce: mean (float) or per-pair array.

    Returns:
        ``>= 0`` (0 for identical images, typically below 1): a float, or a ``(B,)`` float64 array.

    Raises:
        MetricUnavailable: torchvision or the backbone weights are missing (the message says which
            file and where to put it).
    """
    if net not in _LPIPS_BACKBONE_FILES:
        raise ValueError(f"net must be one of {tuple(_LPIPS_BACKBONE_FILES)}, got {net!r}")
    x, y = _pair(a, b)
    metric = _lpips_metric(net)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).float()
    yt = torch.from_numpy(y).permute(0, 3, 1, 2).float()
    values = []
    with torch.inference_mode():
        for i in range(xt.shape[0]):
            metric.reset()
            values.append(float(metric(xt[i : i + 1], yt[i : i + 1])))
    return _reduce(np.array(values), reduce)


def fid(real, fake, feature: int = 2048, weights_path: str | None = None) -> float:
    """FID (Heusel et al. 2017) via ``torchmetrics``' ``FrechetInceptionDistance``.

    Definition: :func:`frechet_distance` between the Inception-v3 (the TF-FID "2015-12-05"
    weights, torch-fidelity's port) ``feature``-dimensional features of the two image sets; the
    uint8 images are resized to 299x299 inside (torch-fidelity's bilinear). Needs many images
    (thousands for ``feature=2048``) to mean anything; report the counts.

    Args:
        real, fake: ``(B, H, W, 3)`` uint8 batches (float in ``[0, 1]`` is converted to uint8 by
            rounding ``x * 255``).
        feature: 64, 192, 768 or 2048 (pool3, the standard).
        weights_path: a local copy of the Inception weights file, if not in the torch hub cache.

    Returns:
        The FID (a float, ``>= 0``).

    Raises:
        MetricUnavailable: torch-fidelity or the Inception weights are missing.
    """

    def as_uint8(images, what):
        x = _raw_batch(images, what)
        if x.dtype != np.uint8:
            x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
        return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)

    r, f = as_uint8(real, "real"), as_uint8(fake, "fake")
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance

        kwargs = {"feature_extractor_weights_path": weights_path} if weights_path is not None else {}
        metric = FrechetInceptionDistance(feature=feature, normalize=False, **kwargs)
    except Exception as e:  # missing package, failed download, missing file
        raise MetricUnavailable(
            f"FID is unavailable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            "It needs torch-fidelity (`pip install torch-fidelity`) and its Inception-v3 FID weights "
            "weights-inception-2015-12-05-6726825d.pth (downloaded from the torch-fidelity GitHub "
            "releases into $TORCH_HOME/hub/checkpoints when there is network, or pass "
            "weights_path=<local file>). Without them, frechet_distance() over another named "
            "extractor's features (e.g. FD_DINO) is available but is not FID."
        ) from e
    with torch.inference_mode():
        metric.update(r, real=True)
        metric.update(f, real=False)
        return float(metric.compute())
