"""What the harness's trained seed-method rows share (:mod:`.dit_methods` AdaptEdit, :mod:`.fireedit_methods`
FireEdit): the check that a row's trained weights are in the model folder (else the train command that writes
them), and the call that turns a method's output into the harness's ``(image, region, status)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def require_weights(models, folder: Path, weights_name: str, method: str, what: str, flag: str | None = None,
                    base_flag: str = "--model") -> Path:
    """``folder`` when it holds ``config.json`` and ``weights_name``; else :class:`MethodUnavailable` naming the
    ``regionedit train <method>`` command (with ``base_flag`` for its base-model option and the ablation's
    ``flag``) that writes it."""
    from regionedit.evaluation.baselines import MethodUnavailable, train_command

    if not ((folder / "config.json").is_file() and (folder / weights_name).is_file()):
        cmd = train_command(method, models, folder)
        if base_flag != "--model":
            cmd = cmd.replace("--model", base_flag)
        raise MethodUnavailable(f"no trained {what} at {folder}: {cmd}" + (f" (with {flag})" if flag else ""))
    return folder


class TrainedMethodRow:
    """A harness row over a trained seed method whose call returns ``image`` ((H, W, 3) uint8), ``region``
    ((H, W) float in [0, 1]) and ``region_from``. Subclasses set ``name``, ``method``, ``compose``, ``params``,
    ``region_always`` (report the region even when not composing: the method keeps the source outside it itself)
    and ``no_region_reason``. A predicted region that is empty where the row needs it is a ``no_edit`` with
    that reason (the input back), never an edit."""

    name: str
    compose: bool = False
    region_always: bool = False
    no_region_reason: str = "no region found"
    last_reason: str | None = None

    def __call__(self, image, instruction, seed, sample):
        self.last_reason = None
        out = self.method(np.asarray(image), instruction, seed=seed, compose=self.compose)
        if not (self.compose or self.region_always):
            return out.image, None, "edited"
        region = out.region > 0.5  # the harness takes the region as a bool map
        if out.region_from in ("predicted", "localizer") and not region.any():
            self.last_reason = self.no_region_reason
            return np.asarray(image).copy(), region, "no_edit"
        return out.image, region, "edited"
