"""The editing pipeline: describe -> localize -> generate -> compose."""

from .editor import Editor, EditorConfig, EditResult

__all__ = ["Editor", "EditorConfig", "EditResult"]
