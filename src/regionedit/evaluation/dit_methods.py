"""The evaluation harness's seed methods on the frozen diffusion transformer (``<model>/dit``).

``adaptedit``
    AdaptEdit (seed 002, :class:`~regionedit.methods.adaptedit.AdaptEdit`) with the weights of ``<model>/adaptedit``
    (``regionedit train adaptedit``): the MaskPredictor's region, the decoded result as is (the latents outside
    the region are the source's, the pixels there pass through the VAE).
``adaptedit-compose``
    the same, composed into the source inside the predicted region (bit-exact outside).
``adaptedit-no_predictor``
    ablation at inference: no MaskPredictor, the whole image is the region (what the adapters do without "where").
``adaptedit-no_gate`` / ``adaptedit-no_region_loss``
    ablations trained apart (``--no-gate`` / ``--region-aware-weight 0``), weights in ``<model>/adaptedit-no_gate``
    and ``<model>/adaptedit-no_region_loss``.

No method reads ground truth: the region is predicted from the instruction and the source.
"""

from __future__ import annotations

from pathlib import Path

from regionedit.evaluation.trained_rows import TrainedMethodRow, require_weights

ADAPTEDIT_METHODS: tuple[str, ...] = ("adaptedit", "adaptedit-compose", "adaptedit-no_predictor", "adaptedit-no_gate",
                                      "adaptedit-no_region_loss")


# the ablations trained apart: method (= its weights' subfolder) -> the trainer's flag
_ABLATION_FLAGS = {"adaptedit-no_gate": "--no-gate", "adaptedit-no_region_loss": "--region-aware-weight 0"}


def adaptedit_subfolder(name: str) -> str:
    """The model subfolder holding the weights of an AdaptEdit evaluation method."""
    return name if name in _ABLATION_FLAGS else "adaptedit"


class AdaptEditMethod(TrainedMethodRow):
    """One AdaptEdit evaluation method (see the module docstring) over ``<model>/dit`` and its adapters. The region
    is reported for every row: AdaptEdit keeps the source latents outside it itself."""

    region_always = True
    no_region_reason = "the MaskPredictor found no region"

    def __init__(self, name: str, models, settings):
        from regionedit.evaluation.baselines import MethodUnavailable, _load_component
        from regionedit.methods.adaptedit import WEIGHTS_NAME, AdaptEdit

        if name not in ADAPTEDIT_METHODS:
            raise ValueError(f"unknown AdaptEdit method {name!r}; one of {ADAPTEDIT_METHODS}")
        root = Path(models.location)
        if not (root / "dit" / "model_index.json").exists():
            raise MethodUnavailable(f"{root} has no dit/ (the frozen diffusion transformer): "
                                    "`regionedit train world-models --only dit` builds it")
        folder = require_weights(models, root / adaptedit_subfolder(name), WEIGHTS_NAME, "adaptedit", "AdaptEdit weights",
                                 _ABLATION_FLAGS.get(name), base_flag="--dit")
        overrides = {"steps": settings.steps, "guidance_scale": settings.guidance}
        if name == "adaptedit-no_predictor":
            overrides["use_mask_predictor"] = False
        self.method = _load_component(f"AdaptEdit ({folder})", lambda: AdaptEdit.from_pretrained(folder, dit=root / "dit",
                                                                                                   **overrides))
        self.name = name
        self.compose = name == "adaptedit-compose"
        cfg = self.method.config
        self.params = {"weights": str(folder), "steps": cfg.steps, "guidance": cfg.guidance_scale,
                       "config": cfg.to_dict(), "prompt": "the instruction",
                       "region": "whole image" if name == "adaptedit-no_predictor" else "MaskPredictor (no ground truth)",
                       "compose": self.compose,
                       "resolution": f"Lanczos to {self.method.native_size}x{self.method.native_size} and back"}
