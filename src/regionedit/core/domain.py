"""``DomainGuard``: refuse images a model folder's generator cannot understand, before anything is edited.

A miniature generator trained on one narrow domain (the bundled shapes-64 models: flat-colour shapes) produces
garbage on a photo, and a user who runs ``regionedit edit photo.jpg ...`` without choosing real models should hear
that, not get a smeared image reported as "edited". The guard reads how well the folder's own VAE reconstructs
the image: an autoencoder trained on a domain reconstructs that domain closely and everything else poorly, so the
mean absolute reconstruction error is a general, model-based out-of-domain score (no world knowledge, no ground
truth). A folder declares its guard in ``regionedit.json``::

    {"plugin": "shapes",
     "domain_guard": {"metric": "vae_reconstruction_l1", "side": 64, "threshold": 0.045,
                      "domain": "flat-colour shapes scenes (the shapes world)", "calibration": {...}}}

``threshold`` is calibrated on in-domain and out-of-domain images (``benchmarks/domain_guard.py`` for the bundled
folder); a folder without the entry (any diffusers folder) has no guard.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .plugin import FOLDER_FILE

METRIC = "vae_reconstruction_l1"

REAL_MODELS_HINT = (
    "for photos and other images, choose models that know them: e.g. `regionedit edit IMAGE \"INSTRUCTION\" "
    "--generator stabilityai/stable-diffusion-2-inpainting --localizer clipseg:CIDAS/clipseg-rd64-refined` "
    "(README, 'Real models'); or pass --domain-guard off (Python: EditorConfig(domain_guard=False)) to edit anyway")


@dataclasses.dataclass
class DomainGuard:
    """An out-of-domain check on the folder's VAE.

    Attributes:
        threshold: images whose score (:meth:`score`) is above this are out of the domain.
        side: the square side (px) the image is resized to before the VAE round trip (the generator's native size).
        domain: a few words naming the domain, for the refusal message.
        calibration: how the threshold was chosen (figures recorded by the calibration script), for the record.
    """

    threshold: float
    side: int = 64
    domain: str = "the images this model folder was trained on"
    calibration: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not (isinstance(self.threshold, (int, float)) and np.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError(f"domain_guard threshold must be a finite number > 0, got {self.threshold!r}")
        if not (isinstance(self.side, int) and self.side >= 8):
            raise ValueError(f"domain_guard side must be a whole number >= 8, got {self.side!r}")

    @classmethod
    def from_folder(cls, folder: str | Path) -> "DomainGuard | None":
        """The guard a model folder declares in ``regionedit.json`` (None when it declares none)."""
        path = Path(folder) / FOLDER_FILE
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text()).get("domain_guard")
        except (OSError, ValueError, AttributeError) as e:
            raise ValueError(f"{path} is not a JSON object ({e}); fix or remove the file") from None
        if entry is None:
            return None
        if not isinstance(entry, dict) or entry.get("metric", METRIC) != METRIC or "threshold" not in entry:
            raise ValueError(f"{path}: 'domain_guard' must be an object with metric {METRIC!r} and a threshold, got "
                             f"{entry!r}; recalibrate it (benchmarks/domain_guard.py) or remove the entry")
        return cls(threshold=float(entry["threshold"]), side=int(entry.get("side", 64)),
                   domain=str(entry.get("domain", cls.domain)), calibration=dict(entry.get("calibration", {})))

    def to_json(self) -> dict[str, Any]:
        """The ``domain_guard`` entry of ``regionedit.json``."""
        return {"metric": METRIC, "side": self.side, "threshold": self.threshold, "domain": self.domain,
                "calibration": self.calibration}

    @torch.no_grad()
    def score(self, vae, image: np.ndarray) -> float:
        """Mean absolute error ``|x - VAE(x)|`` of an ``(H, W, 3)`` uint8 RGB image resized (bilinear, antialiased,
        aspect not kept) to ``side`` x ``side``, in [0, 1] units of the pixel range (0: perfect reconstruction)."""
        x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float()  # a copy: inputs may be read-only
        if tuple(x.shape[-2:]) != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False, antialias=True)
        x = (x.round().clamp(0, 255) / 127.5 - 1).to(vae.device, vae.dtype)
        y = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
        err = float((y.float() - x.float()).abs().mean()) / 2
        if not np.isfinite(err):
            raise RuntimeError("the VAE produced non-finite values checking the image's domain; the model's weights "
                               "are probably corrupted: restore the model folder (reinstall regionedit for the bundled one)")
        return err

    def check(self, vae, image: np.ndarray) -> str | None:
        """None when the image is in the domain, else the reason to refuse it (with the flags that fix it)."""
        s = self.score(vae, image)
        if s <= self.threshold:
            return None
        return (f"this image looks outside what the model folder knows ({self.domain}): its VAE reconstructs it with "
                f"error {s:.3f} > {self.threshold:.3f}, so an edit would be garbage; {REAL_MODELS_HINT}")
