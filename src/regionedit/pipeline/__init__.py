"""The editing pipeline: describe -> localize -> generate -> compose, each stage a component passed in."""

from regionedit.core import EditResult

from .config import EditorConfig
from .editor import Editor

__all__ = ["Editor", "EditorConfig", "EditResult"]
