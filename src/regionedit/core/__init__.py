"""The general core's types: what an edit returns (:class:`EditResult`) and the :class:`Prior` protocol through
which a plugin's domain knowledge enters the Editor, plus :class:`Plugin`, how a model folder names its plugin."""

from .domain import DomainGuard
from .plugin import Plugin, load_plugin
from .prior import Prior
from .result import CANDIDATE_STRIDE, EditResult

__all__ = ["CANDIDATE_STRIDE", "DomainGuard", "EditResult", "Plugin", "Prior", "load_plugin"]
