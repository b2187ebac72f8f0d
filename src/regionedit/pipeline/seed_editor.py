"""The seed methods (and the InstructPix2Pix peer) as editors: ``SeedMethodEditor(name, model)(image, instruction,
seed=...) -> EditResult``, the same result (and PNG provenance) as :class:`~regionedit.pipeline.Editor`'s, so
``regionedit edit --method NAME`` runs any of them. The methods are the evaluation harness's
(:func:`regionedit.evaluation.baselines.build_methods`), with their trained weights read from the model folder; none
reads ground truth.

The result's ``mask`` holds every pixel the method may have changed: the region for a composed method
(``*-compose``: bit-exact outside it), the whole image for the others (their decoded output differs everywhere).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from regionedit.evaluation.dit_methods import ADAPTEDIT_METHODS
from regionedit.evaluation.fireedit_methods import FIREEDIT_METHODS

SEED_METHODS: tuple[str, ...] = ("descriptive", "descriptive-compose", "descriptive-instruction", "region_in_context",
                                 "region_in_context-compose", *ADAPTEDIT_METHODS, *FIREEDIT_METHODS)
# peers that edit from the instruction alone (no target description, no ground truth): InstructPix2Pix on
# <model>/unet_ip2p, the frozen UNet Region in Context and FireEdit steer
PEER_METHODS: tuple[str, ...] = ("instructpix2pix",)
EDIT_METHODS: tuple[str, ...] = (*SEED_METHODS, *PEER_METHODS)


class SeedMethodEditor:
    """A seed method over the models of ``model`` (a bundled name or folder). ``steps`` / ``guidance``: the method's
    denoising steps and text guidance. A method without trained weights in the folder raises ``ValueError`` naming
    the train command."""

    def __init__(self, name: str, model: str | None = None, steps: int | None = None, guidance: float | None = None):
        from regionedit import models as M
        from regionedit.evaluation.baselines import MethodSettings, build_methods

        if name not in EDIT_METHODS:
            raise ValueError(f"unknown method {name!r}; one of {', '.join(EDIT_METHODS)}")
        self.models = M.load(model or "shapes-64")
        settings = MethodSettings(**{k: v for k, v in (("steps", steps), ("guidance", guidance)) if v is not None})
        methods, skipped = build_methods([name], self.models, settings)
        if name in skipped:
            raise ValueError(f"--method {name} cannot run on {self.models.model_id}: {skipped[name]}")
        self.name, self.method = name, methods[name]
        self.model_id = f"{self.models.model_id}+{name}"

    def __call__(self, image: np.ndarray, instruction: str, seed: int = 0, source_caption: str | None = None, **_):
        """Edit ``image`` ((H, W, 3) uint8 RGB) by ``instruction``; returns an :class:`~regionedit.core.result.EditResult`."""
        from regionedit.core.result import EditResult

        t = time.time()
        image = np.asarray(image)
        sample = SimpleNamespace(mask=None, target_prompt=None, source_caption=source_caption)
        edited, region, status = self.method(image, instruction, int(seed), sample)
        composed = self.name.endswith("-compose") and region is not None
        if status != "edited":
            mask = np.zeros(image.shape[:2], bool)
            edited = image.copy()
        else:
            mask = (np.asarray(region) > 0.5) if composed else np.ones(image.shape[:2], bool)
        return EditResult(image=edited, mask=mask,
                          region_probability=None if region is None else np.asarray(region, np.float32),
                          status=status, reason=getattr(self.method, "last_reason", None), instruction=instruction,
                          target_description="", local_prompt="", seed=int(seed), method=self.name,
                          model_id=self.model_id, seconds=time.time() - t)
