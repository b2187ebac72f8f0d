"""Evaluation tools: palette/shape measurement of shapes-world images (see ``measure``)."""

from .measure import (
    UNKNOWN_COLOR,
    MatchResult,
    MeasuredObject,
    background_l1,
    classify_color,
    estimate_background,
    find_object,
    measure_objects,
    scene_match,
)

__all__ = [
    "UNKNOWN_COLOR",
    "MatchResult",
    "MeasuredObject",
    "background_l1",
    "classify_color",
    "estimate_background",
    "find_object",
    "measure_objects",
    "scene_match",
]
