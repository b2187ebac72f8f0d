"""The evaluation harness's FireEdit methods (seed 003) on the frozen InstructPix2Pix UNet (``<model>/unet_ip2p``).

``fireedit``
    FireEdit (:class:`~regionedit.methods.fireedit.FireEdit`) with the weights of ``<model>/fireedit``
    (``regionedit train fireedit``): region proposals from the model's learned region predictor
    (``<model>/region_predictor``) as the general Editor decides it without priors (the ``region-learned`` row's
    region), the decoded result as is (global: every pixel may change).
``fireedit-compose``
    the same, pasted into the source inside the region predictor's region (bit-exact outside; no region found:
    no edit).
``fireedit-no_region_tokens`` / ``fireedit-no_tati`` / ``fireedit-no_hvca``
    ablations trained apart (``--no-region-tokens`` / ``--no-tati`` / ``--no-hvca``), weights in
    ``<model>/fireedit-no_region_tokens``, ``<model>/fireedit-no_tati``, ``<model>/fireedit-no_hvca``.

No method reads ground truth: the proposals come from the region predictor on the instruction and the source.
"""

from __future__ import annotations

from pathlib import Path

from regionedit.evaluation.trained_rows import TrainedMethodRow, require_weights

FIREEDIT_METHODS: tuple[str, ...] = ("fireedit", "fireedit-compose", "fireedit-no_region_tokens", "fireedit-no_tati",
                                     "fireedit-no_hvca")

_ABLATION_FLAGS = {"fireedit-no_region_tokens": "--no-region-tokens", "fireedit-no_tati": "--no-tati",
                   "fireedit-no_hvca": "--no-hvca"}


def fireedit_subfolder(name: str) -> str:
    """The model subfolder holding the weights of a FireEdit evaluation method."""
    return name if name in _ABLATION_FLAGS else "fireedit"


class FireEditMethod(TrainedMethodRow):
    """One FireEdit evaluation method (see the module docstring) over ``<model>/unet_ip2p`` and its trained modules."""

    no_region_reason = "the region predictor found no region"

    def __init__(self, name: str, models, settings):
        from regionedit.evaluation.baselines import IP2P_SUBFOLDER, MethodUnavailable, _load_component
        from regionedit.methods.fireedit import WEIGHTS_NAME, FireEdit
        from regionedit.methods.trainable import frozen_unet_subfolder

        if name not in FIREEDIT_METHODS:
            raise ValueError(f"unknown FireEdit method {name!r}; one of {FIREEDIT_METHODS}")
        root = Path(models.location)
        # the frozen UNet the weights were trained on (their config names it; unet_ip2p for new ones)
        unet_sub = frozen_unet_subfolder(root / fireedit_subfolder(name)) or IP2P_SUBFOLDER
        if not (root / unet_sub / "config.json").exists():
            raise MethodUnavailable(f"{root} has no {unet_sub}/ (the frozen 8-channel InstructPix2Pix UNet "
                                    "FireEdit conditions)")
        folder = require_weights(models, root / fireedit_subfolder(name), WEIGHTS_NAME, "fireedit", "FireEdit weights",
                                 _ABLATION_FLAGS.get(name))
        needs_regions = name != "fireedit-no_region_tokens"
        if needs_regions and not (root / "region_predictor" / "config.json").is_file():
            raise MethodUnavailable(f"no region predictor in {root / 'region_predictor'} ({name} takes its region "
                                    "proposals from it): train one with `regionedit train region`")
        self.method = _load_component(f"FireEdit ({folder})", lambda: FireEdit.from_pretrained(
            folder, model=models, steps=settings.steps, guidance_scale=settings.guidance,
            image_guidance_scale=settings.ip2p_image_guidance))
        self.name = name
        self.compose = name == "fireedit-compose"
        cfg = self.method.config
        self.params = {"weights": str(folder), "steps": cfg.steps, "guidance": cfg.guidance_scale,
                       "image_guidance": cfg.image_guidance_scale, "config": cfg.to_dict(), "prompt": "the instruction",
                       "region": ("the learned region predictor's proposals (no ground truth)"
                                  if cfg.use_region_tokens or self.compose else None),
                       "compose": self.compose,
                       "resolution": f"Lanczos to {self.method.native_size}x{self.method.native_size} and back"}
