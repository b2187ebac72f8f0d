"""``EditorOutput`` and image conversion: the diffusers-style output of a batch edit (``output.images``)."""

from __future__ import annotations

import dataclasses
import numpy as np

from regionedit.core.result import OUTPUT_TYPES, check_output_type, convert_image

__all__ = ["OUTPUT_TYPES", "EditorOutput", "check_output_type", "convert_image"]


@dataclasses.dataclass
class EditorOutput:
    """What a batch call of the :class:`~regionedit.pipeline.Editor` returns (one entry per input, in order).

    Attributes:
        images: the edited images, as ``output_type`` asked (``"np"``: (H, W, 3) uint8; ``"pil"``: PIL images;
            ``"pt"``: (3, H, W) float32 tensors in [0, 1]).
        masks: ``(H, W)`` bool, every pixel each edit may have changed (empty for "no_edit").
        results: each edit's full :class:`~regionedit.core.EditResult` (status, reason, provenance...).
    """

    images: list
    masks: list[np.ndarray]
    results: list

    def __len__(self) -> int:
        return len(self.results)

    @property
    def statuses(self) -> list[str]:
        return [r.status for r in self.results]
