"""The shapes world: procedural scenes with exact ground truth (see WORLD.md, spec v1)."""

from . import spec
from .edits import EditSample, edit_mask, make_edit, sample_edit
from .language import caption
from .rendering import object_coverage, render, render_background
from .scene import Background, Scene, WorldObject, sample_scene

__all__ = [
    "spec",
    "EditSample",
    "edit_mask",
    "make_edit",
    "sample_edit",
    "caption",
    "render",
    "render_background",
    "object_coverage",
    "Background",
    "Scene",
    "WorldObject",
    "sample_scene",
]
