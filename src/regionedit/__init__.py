"""regionedit: mask-free, region-aware, instruction-based image editing.

The library lives here; the apps (``regionedit.cli``, ``regionedit.web``, training and evaluation
entry points) sit on top of it and use only its public API.
"""

__version__ = "0.1.0"
