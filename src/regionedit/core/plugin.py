"""``Plugin``: a domain's describer and priors, found by name through Python entry points.

A model folder names the plugin its models were trained for in ``regionedit.json`` (``{"plugin": "shapes"}``);
:meth:`regionedit.pipeline.Editor.from_pretrained` loads that plugin's describer and priors. Plugins register
under the entry-point group ``regionedit.plugins`` (``pyproject.toml``)::

    [project.entry-points."regionedit.plugins"]
    shapes = "regionedit.world.plugin:ShapesPlugin"

so the core never imports a plugin's code: it is found by name, and a folder without ``regionedit.json`` (any
diffusers folder) runs with the general describer and no priors.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

GROUP = "regionedit.plugins"
FOLDER_FILE = "regionedit.json"  # in a model folder: {"plugin": "<name>"}


@runtime_checkable
class Plugin(Protocol):
    """A domain plugin. ``describer(models)`` returns its :class:`~regionedit.describe.Describer`;
    ``priors(models, region_predictor)`` its list of :class:`~regionedit.core.Prior` (in the order the Editor
    consults them)."""

    name: str

    def describer(self, models) -> Any: ...

    def priors(self, models, region_predictor=None) -> list: ...


def available_plugins() -> list[str]:
    """Names of the installed plugins."""
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load_plugin(name: str) -> Plugin:
    """The installed plugin ``name`` (an instance), or a ``ValueError`` that lists the installed ones."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        have = ", ".join(available_plugins()) or "none"
        raise ValueError(f"plugin {name!r} is not installed (installed: {have}); install the package that "
                         f"provides it, or remove {FOLDER_FILE} from the model folder to run without it")
    try:
        return found[0].load()()
    except ImportError as e:
        raise ValueError(f"plugin {name!r} is registered ({found[0].value}) but cannot be imported ({e}); reinstall "
                         f"the package that provides it, or remove {FOLDER_FILE} from the model folder") from None


def folder_plugin(folder: str | Path) -> str | None:
    """The plugin a model folder names in its ``regionedit.json``, or None."""
    path = Path(folder) / FOLDER_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); it should read {{\"plugin\": \"<name>\"}}") from None
    name = data.get("plugin") if isinstance(data, dict) else None
    if name is not None and not isinstance(name, str):
        raise ValueError(f"{path}: 'plugin' must be a string, got {name!r}")
    return name
