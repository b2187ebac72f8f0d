"""Generation: the frozen text-to-image / inpainting models behind one small interface.

:class:`InpaintGenerator`: regionedit's own DDIM-family loop with latent blending over :class:`regionedit.models.Models`;
:class:`PipelineInpaintGenerator`: any diffusers inpainting pipeline loaded whole (its own scheduler and encoders)."""

from regionedit.generate.inpaint import InpaintGenerator, InpaintConfig
from regionedit.generate.pipelines import PipelineInpaintGenerator, inpaint_pipeline_class

__all__ = ["InpaintGenerator", "InpaintConfig", "PipelineInpaintGenerator", "inpaint_pipeline_class"]
