"""Models: architectures of the bundled miniature models and one loader for bundled or real ones."""

from .bundled import bundled_dir
from .loading import Models, load

__all__ = ["Models", "load", "bundled_dir"]
