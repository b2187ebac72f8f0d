"""Localisation: the learnable multi-scale edit region (seed 001) and its losses."""

from .losses import (
    clip_directional_loss,
    clip_global_loss,
    clip_structural_loss,
    semantic_alignment_loss,
    soft_composite,
)
from .predictor import RegionPredictor, RegionPredictorConfig, SemanticAlignment

__all__ = [
    "RegionPredictor",
    "RegionPredictorConfig",
    "SemanticAlignment",
    "semantic_alignment_loss",
    "clip_global_loss",
    "clip_directional_loss",
    "clip_structural_loss",
    "soft_composite",
]
