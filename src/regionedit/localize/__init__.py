"""Localisation: the learnable multi-scale edit region (seed 001) and its losses."""

from regionedit.localize.losses import (
    clip_contrastive_loss,
    clip_directional_loss,
    clip_global_loss,
    clip_structural_loss,
    semantic_alignment_loss,
    soft_composite,
)
from regionedit.localize.predictor import (
    RegionPredictor,
    RegionPredictorConfig,
    SemanticAlignment,
    load_region_predictor,
    save_region_predictor,
)

__all__ = [
    "RegionPredictor",
    "RegionPredictorConfig",
    "SemanticAlignment",
    "load_region_predictor",
    "save_region_predictor",
    "semantic_alignment_loss",
    "clip_global_loss",
    "clip_directional_loss",
    "clip_contrastive_loss",
    "clip_structural_loss",
    "soft_composite",
]

# Zero-shot localizer backends (CLIPSeg; OWLv2 / Grounding DINO boxes + SAM / SAM 2; SAM 3) and their spec strings.
from regionedit.localize.backends import LocalizerSpec, load_localizer, parse_localizer_spec  # noqa: E402
from regionedit.localize.pretrained import LocalizerSpecError  # noqa: E402
from regionedit.localize.sam3 import Sam3Localizer  # noqa: E402
from regionedit.localize.zero_shot import BoxSamLocalizer, CLIPSegLocalizer  # noqa: E402

__all__ += [
    "BoxSamLocalizer",
    "CLIPSegLocalizer",
    "LocalizerSpec",
    "LocalizerSpecError",
    "load_localizer",
    "parse_localizer_spec",
    "Sam3Localizer",
]
