"""The shapes world's priors: hand-written knowledge of WORLD.md (snapping, islands, placement, shaping, CLIP verification) behind the core's Prior protocol."""
