"""Generation: the frozen text-to-image / inpainting models behind one small interface."""

from regionedit.generate.inpaint import InpaintGenerator, InpaintConfig

__all__ = ["InpaintGenerator", "InpaintConfig"]
