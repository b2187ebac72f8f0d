"""Swappable components of an :class:`~regionedit.pipeline.Editor`, named by string (CLI flags, API keywords).

    generator   an id or folder of any diffusers inpainting pipeline (loaded whole, with its own scheduler):
                ``stabilityai/stable-diffusion-2-inpainting``, ``runs/my-sdxl-inpaint``; or an object with
                ``native_size`` and ``(image, region, prompts, generator, steps, guidance) -> image``
    localizer   ``learned`` (the model folder's seed-001 region predictor), ``learned:FOLDER`` (a region predictor
                folder, run over the editor's CLIP and instruction encoder), or a zero-shot spec
                (:mod:`regionedit.localize.backends`: ``clipseg:ID``, ``owlv2:ID+sam:ID``, ``gdino:ID+sam:ID``, ``sam3:ID``); or a
                callable ``(image, text, size) -> (prob, presence)``
    describer   ``grammar`` (the offline :class:`~regionedit.describe.TemplateDescriber`), or the id / folder of a chat
                LM / VLM (:class:`~regionedit.describe.LMDescriber`); or any :class:`~regionedit.describe.Describer`

Each resolver returns the loaded component and a short name for the outputs' provenance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``"fp32" | "fp16" | "bf16"`` (or a torch dtype, or None) -> torch dtype; a clear ValueError otherwise."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose fp32, fp16 or bf16") from None


def resolve_generator(generator: Any, torch_dtype: torch.dtype | None, device: str | torch.device | None,
                      steps: int, guidance: float, local_files_only: bool | None = None) -> tuple[Any, str]:
    """``(generator, name)`` for a ``generator=`` value (see the module docstring)."""
    from regionedit.generate import InpaintConfig, PipelineInpaintGenerator

    if not isinstance(generator, (str, Path)):
        if not (hasattr(generator, "native_size") and callable(generator)):
            raise ValueError(f"generator must be an id / folder of a diffusers inpainting pipeline or an object with "
                             f"native_size and __call__(image, region, prompts, ...), got {type(generator).__name__}")
        return generator, str(getattr(generator, "model_id", type(generator).__name__))
    kw = {} if local_files_only is None else {"local_files_only": local_files_only}
    gen = PipelineInpaintGenerator.from_pretrained(str(generator), torch_dtype=torch_dtype, device=device or "cpu",
                                                   config=InpaintConfig(steps=steps, guidance=guidance), **kw)
    return gen, str(generator)


def resolve_localizer(localizer: Any, models, folder_predictor, torch_dtype: torch.dtype | None,
                      device: str | torch.device | None, local_files_only: bool | None = None) -> tuple[Any, str]:
    """``(localizer, name)`` for a ``localizer=`` value; ``models`` feed the learned predictor (CLIP + instruction
    encoder), ``folder_predictor`` is the model folder's own region predictor (None when it has none)."""
    from regionedit.localize.learned import LearnedLocalizer

    if not isinstance(localizer, (str, Path)):
        if not callable(localizer):
            raise ValueError(f"localizer must be a spec string or a callable (image, text, size) -> (prob, presence), "
                             f"got {type(localizer).__name__}")
        return localizer, type(localizer).__name__
    spec = str(localizer).strip()
    if spec.lower() == "learned":
        if folder_predictor is None:
            raise ValueError("localizer 'learned' is the model folder's region predictor, and this folder has none: "
                             "pass learned:FOLDER (a region predictor trained with `regionedit train region`) or a "
                             "zero-shot localizer such as clipseg:CIDAS/clipseg-rd64-refined")
        return LearnedLocalizer(models, folder_predictor), "learned"
    if spec.lower().startswith("learned:"):
        from regionedit.localize import load_region_predictor

        path = Path(spec.split(":", 1)[1]).expanduser()
        if not (path / "config.json").is_file():
            raise ValueError(f"{spec!r}: {path} is no region predictor folder (no config.json); train one with "
                             "`regionedit train region --out runs/region` and pass its export folder")
        if models is None:
            raise ValueError(f"{spec!r} runs over a CLIP and an instruction encoder: pass a model folder that has them "
                             "(--model), or --clip ID_OR_FOLDER and --instruction-encoder ID_OR_FOLDER")
        pred = load_region_predictor(path)
        if torch_dtype is not None or device is not None:
            pred = pred.to(device or "cpu", torch_dtype or torch.float32)
        return LearnedLocalizer(models, pred), spec
    from regionedit.localize.backends import load_localizer

    kw = {} if local_files_only is None else {"local_files_only": local_files_only}
    loc = load_localizer(spec, torch_dtype=torch_dtype, device=device or "cpu", **kw)
    if loc is None:  # pragma: no cover - load_localizer returns None only for "learned", handled above
        raise ValueError(f"localizer spec {spec!r} names the learned predictor; pass 'learned' or 'learned:FOLDER'")
    return loc, spec


def resolve_describer(describer: Any, torch_dtype: torch.dtype | None, device: str | torch.device | None,
                      local_files_only: bool | None = None) -> tuple[Any, str]:
    """``(describer, name)`` for a ``describer=`` value."""
    from regionedit.describe import LMDescriber, TemplateDescriber

    if not isinstance(describer, (str, Path)):
        if not callable(describer):
            raise ValueError(f"describer must be 'grammar', an LM id / folder, or a callable (instruction, caption) "
                             f"-> Description, got {type(describer).__name__}")
        return describer, type(describer).__name__
    if str(describer).lower() in ("grammar", "template", "templates"):
        return TemplateDescriber(), "grammar"
    kw = {} if local_files_only is None else {"local_files_only": local_files_only}
    return LMDescriber.from_pretrained(str(describer), torch_dtype=torch_dtype, device=device or "cpu", **kw), str(describer)


def move(component: Any, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> None:
    """Move a component's models to ``device`` / ``dtype`` in place (None: keep): torch modules and diffusers
    pipelines directly, objects with their own ``to`` (Models, LearnedLocalizer) through it, and wrappers (zero-shot
    localizers, LM describers, pipeline generators) through their ``model`` / ``detector`` / ``segmenter`` /
    ``pipeline`` attributes."""
    if component is None or (device is None and dtype is None):
        return
    kw = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
    if isinstance(component, torch.nn.Module) or hasattr(component, "components"):  # a module / DiffusionPipeline
        component.to(**kw)
        return
    if callable(getattr(type(component), "to", None)):
        component.to(device, dtype)
        return
    for name in ("model", "detector", "segmenter", "pipeline"):
        move(getattr(component, name, None), device, dtype)
