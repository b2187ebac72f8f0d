"""The editing pipeline: describe -> localize -> generate -> compose, each stage a component passed in."""

from regionedit.core import EditResult

from .config import EditorConfig
from .editor import Editor
from .output import EditorOutput
from .session import EditSession

__all__ = ["Editor", "EditorConfig", "EditorOutput", "EditResult", "EditSession"]
