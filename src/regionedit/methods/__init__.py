"""Editing methods from the seed papers, each a self-contained class over the frozen models of a model folder.

- :class:`DescriptiveEdit` (seed 004): edit from a description of the desired image; a frozen Ref-UNet and
  Attention Bridges with zero-initialised fusion; dual (image, text) classifier-free guidance.
- :class:`AdaptEdit` (seed 002): Block Adapters with a SpatialGate at every block of a frozen diffusion transformer,
  a co-trained MaskPredictor and the Region-Aware Loss.
- :class:`FireEdit` (seed 003): a region-aware mixed-modal VL encoder (image, region and text tokens) conditioning a
  frozen InstructPix2Pix UNet, with Time-Aware Target Injection and Hybrid Visual Cross Attention.
"""

from .adaptedit import AdaptEdit, AdaptEditOutput
from .adaptedit_modules import AdaptEditConfig
from .attention_bridge import AttentionBridge, BridgeState, RefFeatures
from .descriptive_edit import DescriptiveEdit, DescriptiveEditConfig, dual_guidance
from .fireedit import FireEdit, FireEditOutput
from .fireedit_modules import FireEditConfig

__all__ = ["AdaptEdit", "AdaptEditConfig", "AdaptEditOutput", "AttentionBridge", "BridgeState", "DescriptiveEdit", "DescriptiveEditConfig", "FireEdit", "FireEditConfig",
           "FireEditOutput", "RefFeatures", "dual_guidance"]
