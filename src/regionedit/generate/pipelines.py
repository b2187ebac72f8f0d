"""Any diffusers inpainting pipeline, loaded whole, behind the generator interface of :class:`InpaintGenerator`.

    gen = PipelineInpaintGenerator.from_pretrained("stabilityai/stable-diffusion-2-inpainting",
                                                   torch_dtype=torch.float16, device="cuda")
    out = gen(x, region, ["a dog"], generator=torch.Generator().manual_seed(0))   # (B, 3, S, S) in [-1, 1]

Unlike :class:`~regionedit.generate.InpaintGenerator` (regionedit's own DDIM-family loop with latent blending over the
components of :class:`regionedit.models.Models`), the pipeline runs its own loop with its own scheduler (PNDM stays
PNDM, Euler stays Euler, flow matching stays flow matching), its own text encoders (SDXL's two, SD3's three) and its
own mask conditioning (9-channel UNets, Flux Fill's packed mask). Tested on tiny folders of
StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline, StableDiffusion3InpaintPipeline and FluxFillPipeline
(:mod:`regionedit.models.tiny_pipelines`); the same code path serves every diffusers pipeline whose ``__call__`` takes
``image`` and ``mask_image``. A text-to-image folder loads as its inpainting counterpart (AutoPipelineForInpainting's mapping: a
StableDiffusionPipeline folder becomes a StableDiffusionInpaintPipeline, which inpaints a 4-channel UNet by blending).

Frames and ranges: images (B, 3, H, W) float in [-1, 1], RGB, row 0 at the top; regions (B, 1, H, W) float in {0, 1},
1 = generate, in the same pixel frame; outputs (B, 3, H, W) float32 in [-1, 1] on the CPU.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Callable

import torch

from .inpaint import InpaintConfig

INPAINT_EXAMPLES = ("StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline, StableDiffusion3InpaintPipeline, "
                    "FluxFillPipeline")


def _params(fn) -> set[str]:
    return set(inspect.signature(fn).parameters)


def _is_inpaint_class(cls) -> bool:
    """A pipeline class that inpaints: its ``__call__`` takes both ``image`` and ``mask_image``."""
    return {"image", "mask_image"} <= _params(cls.__call__)


def inpaint_pipeline_class(class_name: str):
    """The diffusers inpainting pipeline class for a folder whose ``model_index.json`` names ``class_name``: the class
    itself when it inpaints (FluxFillPipeline, StableDiffusionInpaintPipeline, ...), else its inpainting counterpart
    as AutoPipelineForInpainting maps it (StableDiffusionPipeline -> StableDiffusionInpaintPipeline), else None."""
    import diffusers

    cls = getattr(diffusers, class_name, None)
    if cls is not None and isinstance(cls, type) and _is_inpaint_class(cls):
        return cls
    try:
        from diffusers.pipelines.auto_pipeline import AUTO_INPAINT_PIPELINES_MAPPING, _get_task_class
    except ImportError:  # pragma: no cover - diffusers moved its private helpers
        return None
    name = class_name.replace("ControlPipeline", "ControlInpaintPipeline") if "ControlPipeline" in class_name else class_name
    found = _get_task_class(AUTO_INPAINT_PIPELINES_MAPPING, name, throw_error_if_not_exist=False)
    return found if found is not None and _is_inpaint_class(found) else None


def _scheduler_class(name: str):
    import diffusers

    from regionedit.models.tiny_pipelines import SCHEDULERS

    cls_name = SCHEDULERS.get(name.lower(), name)
    cls = getattr(diffusers, cls_name, None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, diffusers.SchedulerMixin):
        raise ValueError(f"unknown scheduler {name!r}: pass a diffusers scheduler class name such as "
                         f"'EulerDiscreteScheduler' or 'DPMSolverMultistepScheduler' (or one of {sorted(SCHEDULERS)})")
    return cls


class PipelineInpaintGenerator:
    """A diffusers inpainting pipeline as a regionedit generator: ``native_size`` and
    ``(image, region, prompts, generator, steps, guidance) -> image`` as :class:`InpaintGenerator`.

    ``pipeline``: a loaded diffusers pipeline whose ``__call__`` takes ``image`` and ``mask_image``;
    ``config``: default steps / guidance / negative prompt (``blend`` does not apply: the pipeline conditions on the
    mask its own way); ``native_size``: override of the pixel size read from the pipeline; ``model_id``: the name
    recorded in outputs (default: the folder or id it was loaded from)."""

    def __init__(self, pipeline, config: InpaintConfig | None = None, native_size: int | None = None,
                 model_id: str | None = None):
        if not _is_inpaint_class(type(pipeline)):
            raise ValueError(f"{type(pipeline).__name__} does not inpaint (its __call__ takes no image and mask_image); "
                             f"pass an inpainting pipeline such as {INPAINT_EXAMPLES}, or load one with "
                             "PipelineInpaintGenerator.from_pretrained")
        self.pipeline = pipeline
        self.config = config or InpaintConfig()
        self._native = native_size
        self.model_id = model_id or str(getattr(pipeline, "name_or_path", None) or type(pipeline).__name__)
        self._call_params = _params(type(pipeline).__call__)
        if hasattr(pipeline, "set_progress_bar_config"):
            pipeline.set_progress_bar_config(disable=True)

    # -- loading -------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, id_or_folder: str | Path, torch_dtype: torch.dtype | None = None,
                        device: str | torch.device = "cpu", local_files_only: bool = True,
                        scheduler: str | Any | None = None, config: InpaintConfig | None = None,
                        native_size: int | None = None, **kwargs) -> "PipelineInpaintGenerator":
        """Load a whole diffusers pipeline folder (or Hugging Face id, or bundled name) as an inpainting generator.

        The folder's ``model_index.json`` names the class: an inpainting pipeline loads as itself, a text-to-image
        pipeline as its inpainting counterpart (AutoPipelineForInpainting's mapping). The folder's own scheduler is
        kept unless ``scheduler`` names another class (``"EulerDiscreteScheduler"``, built from the folder's scheduler
        config) or is a scheduler instance. The safety checker is not loaded; progress bars are off. ``torch_dtype``
        (None: as diffusers loads by default, float32) and ``device`` place every component; ``kwargs`` go to the
        pipeline's ``from_pretrained`` (``variant="fp16"``, ``vae=...``). A regionedit folder with an
        ``unet_inpaint`` beside a text-to-image ``unet`` (the bundled layout) uses the inpainting UNet.

        Raises ValueError naming the folder when it is no diffusers pipeline, or a pipeline with no inpainting
        counterpart."""
        import diffusers

        from regionedit.models.loading import resolve

        loc, is_local = resolve(id_or_folder)
        index = _model_index(loc, is_local, local_files_only)
        class_name = index.get("_class_name")
        if not class_name:
            raise ValueError(f"{loc}/model_index.json names no pipeline class (_class_name); expected the "
                             f"model_index.json a diffusers pipeline's save_pretrained writes (e.g. {INPAINT_EXAMPLES})")
        target = inpaint_pipeline_class(class_name)
        if target is None:
            known = getattr(diffusers, class_name, None) is not None
            what = (f"a {class_name}, a pipeline with no inpainting counterpart in diffusers {diffusers.__version__}"
                    if known else f"a {class_name}, which this diffusers ({diffusers.__version__}) does not know")
            raise ValueError(f"{loc} holds {what}; expected an inpainting pipeline ({INPAINT_EXAMPLES}, ...) or a "
                             "text-to-image pipeline AutoPipelineForInpainting maps to one (StableDiffusionPipeline, "
                             "StableDiffusionXLPipeline, StableDiffusion3Pipeline, FluxPipeline, ...)")
        init = _params(target.__init__)
        dtype_kw = _dtype_kw(torch_dtype)
        kw: dict[str, Any] = {"local_files_only": local_files_only, **dtype_kw, **kwargs}
        for name, spec in index.items():  # components the folder was saved without ([null, null]: SD3 without T5)
            if name in init and isinstance(spec, list) and list(spec) == [None, None]:
                kw.setdefault(name, None)
        if "safety_checker" in init:
            kw.setdefault("safety_checker", None)
        if "requires_safety_checker" in init:
            kw.setdefault("requires_safety_checker", False)
        if ("unet" in init and "unet" not in kw and is_local and target is not getattr(diffusers, class_name, None)
                and (Path(loc) / "unet_inpaint" / "config.json").exists()):
            from diffusers import UNet2DConditionModel  # the bundled layout: a 9-channel UNet beside the 4-channel one

            kw["unet"] = UNet2DConditionModel.from_pretrained(loc, subfolder="unet_inpaint", local_files_only=True,
                                                              **dtype_kw)
        try:
            pipe = target.from_pretrained(loc, **kw)
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise ValueError(f"could not load {loc} as a {target.__name__}: {e}; check that the folder is complete "
                             "(re-download or re-save it with save_pretrained)") from e
        if scheduler is not None:
            pipe.scheduler = _override_scheduler(pipe.scheduler, scheduler)
        pipe = pipe.to(device)
        return cls(pipe, config=config, native_size=native_size, model_id=str(id_or_folder))

    # -- the generator interface ----------------------------------------------------------------------
    @property
    def native_size(self) -> int:
        """Pixel size the pipeline was trained at: the UNet's sample size (or the transformer pipeline's
        ``default_sample_size`` / the transformer's sample size) times the VAE's downsampling factor."""
        if self._native is not None:
            return int(self._native)
        p = self.pipeline
        f = int(getattr(p, "vae_scale_factor", 8))
        unet = getattr(p, "unet", None)
        if unet is not None:
            return int(unet.config.sample_size) * f
        size = getattr(p, "default_sample_size", None)
        if size is None and getattr(p, "transformer", None) is not None:
            size = getattr(p.transformer.config, "sample_size", None)
        if size is None:
            raise ValueError(f"cannot tell the native size of {type(p).__name__} (no unet, no default_sample_size); "
                             "pass native_size= to PipelineInpaintGenerator")
        return int(size) * f

    @property
    def scheduler(self):
        """The pipeline's own scheduler (the folder's class unless overridden)."""
        return self.pipeline.scheduler

    def describe(self) -> dict[str, str]:
        """Model identity recorded in outputs: the id / folder, the pipeline class and its scheduler class."""
        return {"generator": self.model_id, "pipeline": type(self.pipeline).__name__,
                "scheduler": type(self.pipeline.scheduler).__name__}

    @torch.no_grad()
    def __call__(
        self,
        image: torch.Tensor,
        region: torch.Tensor,
        prompts: list[str],
        generator: torch.Generator | list[torch.Generator] | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        callback_on_step_end: Callable | None = None,
        **pipeline_kwargs,
    ) -> torch.Tensor:
        """Fill ``region`` of ``image`` following ``prompts`` with the pipeline.

        ``image``: (B, 3, H, W) float in [-1, 1]; ``region``: (B, 1, H, W) float in {0, 1}, 1 = generate (same frame);
        H and W multiples of the VAE factor (the Editor passes native_size crops); ``prompts``: B strings;
        ``generator``: one for the batch or a list of B (image i's noise from generator i); ``steps`` / ``guidance``:
        None = the config's; ``callback_on_step_end`` and other ``pipeline_kwargs`` go to the pipeline's call.
        Returns (B, 3, H, W) float32 in [-1, 1] on the CPU. Raises RuntimeError on non-finite output."""
        cfg = self.config
        steps = steps or cfg.steps
        guidance = cfg.guidance if guidance is None else guidance
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W) in [-1, 1], got shape {tuple(image.shape)}")
        b, _, h, w = image.shape
        if region.shape != (b, 1, h, w):
            raise ValueError(f"region must be (B, 1, H, W) = {(b, 1, h, w)} like the image, got {tuple(region.shape)}")
        if len(prompts) != b:
            raise ValueError(f"got {len(prompts)} prompts for {b} images; pass one prompt per image")
        if isinstance(generator, (list, tuple)) and len(generator) != b:
            raise ValueError(f"got {len(generator)} generators for {b} images; pass one per image (or one)")
        f = int(getattr(self.pipeline, "vae_scale_factor", 8))
        if h % f or w % f:
            raise ValueError(f"image is {w}x{h}, not a multiple of the VAE factor {f}; resize the crop to native_size "
                             f"({self.native_size})")
        kw: dict[str, Any] = dict(prompt=list(prompts), image=((image.float() + 1) / 2).clamp(0, 1).cpu(),
                                  mask_image=(region.float() >= 0.5).float().cpu(), height=h, width=w,
                                  num_inference_steps=int(steps), guidance_scale=float(guidance),
                                  generator=list(generator) if isinstance(generator, tuple) else generator,
                                  output_type="pt")
        if "strength" in self._call_params:
            kw["strength"] = 1.0
        if cfg.negative_prompt and "negative_prompt" in self._call_params:
            kw["negative_prompt"] = [cfg.negative_prompt] * b
        if callback_on_step_end is not None:
            kw["callback_on_step_end"] = callback_on_step_end
        kw = {k: v for k, v in kw.items() if k in self._call_params or k == "prompt"}
        kw.update(pipeline_kwargs)  # the caller's own extras go through as given (the pipeline checks them)
        images = self.pipeline(**kw).images
        out = torch.as_tensor(images) if not isinstance(images, torch.Tensor) else images
        if out.ndim == 4 and out.shape[-1] == 3 and out.shape[1] != 3:  # numpy-style (B, H, W, 3)
            out = out.permute(0, 3, 1, 2)
        out = out.detach().to("cpu", torch.float32) * 2 - 1
        if not bool(torch.isfinite(out).all()):
            raise RuntimeError(
                f"the {type(self.pipeline).__name__} produced non-finite values (NaN or inf) in the generated patch; in "
                "float16 the usual cause is a VAE that overflows (SDXL's): load with torch_dtype=torch.float32 or "
                "torch.bfloat16, or pass an fp16-safe VAE (vae=...); otherwise the weights are corrupted: check them, "
                "or re-download the model")
        if out.shape[-2:] != (h, w):
            out = torch.nn.functional.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        return out.clamp(-1, 1)


def _dtype_kw(dtype: torch.dtype | None) -> dict:
    """The dtype keyword of diffusers' ``from_pretrained``: ``dtype`` where diffusers has it (``torch_dtype`` is
    deprecated there), ``torch_dtype`` in older releases; {} for None (diffusers' default, float32)."""
    if dtype is None:
        return {}
    from diffusers.utils import deprecation_utils

    return {"dtype": dtype} if hasattr(deprecation_utils, "_resolve_dtype") else {"torch_dtype": dtype}


def _model_index(loc: str, is_local: bool, local_files_only: bool) -> dict:
    """The ``model_index.json`` of a folder or hub id, or a ValueError naming it and what is expected."""
    expected = (f"expected a diffusers pipeline folder (model_index.json + one subfolder per component, as "
                f"save_pretrained writes: an inpainting pipeline such as {INPAINT_EXAMPLES}, or a text-to-image "
                "pipeline with an inpainting counterpart) or the Hugging Face id of one")
    if is_local:
        p = Path(loc)
        if not p.is_dir():
            raise ValueError(f"{loc} is a file, not a folder; {expected}")
        if not (p / "model_index.json").exists():
            hint = ""
            if (p / "config.json").exists() or (p / "unet" / "config.json").exists():
                hint = ("; a single model or a component folder (e.g. a bare UNet) goes to regionedit.models.load(..., "
                        "inpaint=<folder>) instead")
            raise ValueError(f"{loc} is not a diffusers pipeline folder (it has no model_index.json); {expected}{hint}")
        try:
            return json.loads((p / "model_index.json").read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{loc}/model_index.json is not valid JSON ({e}); re-save the pipeline with save_pretrained") from e
    from diffusers import DiffusionPipeline

    try:
        return dict(DiffusionPipeline.load_config(loc, local_files_only=local_files_only))
    except (OSError, ValueError) as e:
        where = ("is not a local folder and not in the Hugging Face cache (local_files_only=True): download it first "
                 f"(`hf download {loc}`) or pass local_files_only=False" if local_files_only
                 else "is not a local folder and could not be fetched from the Hugging Face hub")
        raise ValueError(f"{loc} {where}; {expected} ({type(e).__name__}: {e})") from e


def _override_scheduler(current, scheduler):
    """``scheduler`` (a class name or an instance) in place of ``current``, from ``current``'s config; a class that is
    not among ``current``'s compatibles is a ValueError (a flow-matching scheduler on an epsilon UNet, ...)."""
    import diffusers

    if isinstance(scheduler, diffusers.SchedulerMixin):
        return scheduler
    cls = _scheduler_class(str(scheduler))
    ok = {c.__name__ for c in current.compatibles} | {type(current).__name__}
    if cls.__name__ not in ok:
        raise ValueError(f"{cls.__name__} cannot replace this pipeline's {type(current).__name__} (not among its "
                         f"compatible schedulers: {', '.join(sorted(ok))}); pick one of those")
    return cls.from_config(current.config)
