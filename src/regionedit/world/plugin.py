"""The shapes world as a plugin of the general Editor: its describer (the WORLD.md grammar) and its priors.

Registered under the entry-point group ``regionedit.plugins`` as ``shapes`` (pyproject.toml); the bundled
``shapes-64`` folder names it in ``regionedit.json``, so ``Editor.from_pretrained("shapes-64")`` edits with the
world's rules and ``Editor.from_pretrained("shapes-64", priors=False)`` with the learned parts alone.

    from regionedit.world.plugin import world_editor
    editor = world_editor(models, region_predictor, prior_config=WorldPriorConfig(snap=False))
"""

from __future__ import annotations

from regionedit.world.grammar import WorldDescriber
from regionedit.world.priors.prior import WorldPrior, WorldPriorConfig

NAME = "shapes"


class ShapesPlugin:
    """The :class:`~regionedit.core.Plugin` of the shapes world."""

    name = NAME

    def describer(self, models=None) -> WorldDescriber:
        return WorldDescriber()

    def priors(self, models, region_predictor=None, config: WorldPriorConfig | None = None) -> list[WorldPrior]:
        return [WorldPrior(models, region_predictor, config)]


def world_editor(models, region_predictor=None, config=None, prior_config: WorldPriorConfig | None = None,
                 priors: bool = True):
    """An :class:`~regionedit.pipeline.Editor` with the world's describer and (``priors=True``) its priors."""
    from regionedit.pipeline import Editor

    plugin = ShapesPlugin()
    return Editor(models, region_predictor, describer=plugin.describer(models), config=config,
                  priors=plugin.priors(models, region_predictor, prior_config) if priors else [])
