"""One function to load the models an editor needs: the bundled shapes-64 folder, any local
diffusers/transformers folder, or a Hugging Face id.

>>> from regionedit import models
>>> m = models.load("shapes-64")                       # bundled miniature models
>>> m = models.load("runwayml/stable-diffusion-inpainting",
...                 clip="openai/clip-vit-large-patch14",
...                 instruction_encoder="google/flan-t5-base")   # real models, same code path

Components load lazily on first access, always in float32 on the CPU unless asked otherwise (``dtype=``,
``device=``, or :meth:`Models.to` later). The scheduler is the class the folder names (PNDM stays PNDM), checked
against what regionedit's own latent-blending loop needs (:func:`check_loop_scheduler`).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import torch

from .bundled import BUNDLED


def resolve(name_or_path: str | Path) -> tuple[str, bool]:
    """``(location, is_local)``: a bundled name or existing folder -> its path; else a hub id."""
    s = str(name_or_path)
    if s in BUNDLED:
        path = BUNDLED[s]
        if not (path / "model_index.json").exists():
            raise FileNotFoundError(
                f"bundled model {s!r} is missing its files at {path}; reinstall regionedit, or rebuild the models "
                "with `regionedit train recipe --out runs/repro` and pass --model runs/repro/export"
            )
        return str(path), True
    p = Path(s).expanduser()
    if p.exists():
        return str(p), True
    return s, False


class Models:
    """The frozen models of an editor. Attributes load on first access:

    tokenizer, text_encoder (CLIPTextModel: conditions the generator), vae (AutoencoderKL),
    unet (text-to-image, 4 input channels; None for an inpainting-only checkpoint), unet_inpaint
    (9 input channels), scheduler, clip + clip_processor (CLIPModel: region prediction and scoring),
    instruction_encoder + instruction_tokenizer (T5 encoder: instruction features F_ins).

    ``scheduler``: None (the class the folder's ``scheduler/scheduler_config.json`` names) or a diffusers scheduler
    class name built from that config instead (``"DDIMScheduler"``, ``"EulerDiscreteScheduler"``, ...).
    """

    def __init__(
        self,
        name_or_path: str | Path = "shapes-64",
        clip: str | Path | None = None,
        instruction_encoder: str | Path | None = None,
        inpaint: str | Path | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        local_files_only: bool | None = None,
        scheduler: str | None = None,
    ):
        self.location, local = resolve(name_or_path)
        self.model_id = str(name_or_path)
        self.dtype, self.device = dtype, torch.device(device)
        self._clip_loc = resolve(clip)[0] if clip is not None else None
        self._ins_loc = resolve(instruction_encoder)[0] if instruction_encoder is not None else None
        self._inpaint_loc = resolve(inpaint)[0] if inpaint is not None else None
        self._local_only = local if local_files_only is None else local_files_only
        self._scheduler_name = scheduler

    # -- helpers ---------------------------------------------------------------------------------
    def _kw(self, subfolder: str | None = None) -> dict[str, Any]:
        kw: dict[str, Any] = {"local_files_only": self._local_only}
        if subfolder:
            kw["subfolder"] = subfolder
        return kw

    def _has(self, subfolder: str) -> bool:
        p = Path(self.location) / subfolder
        return p.exists() if Path(self.location).exists() else True

    def _frozen(self, model):
        if model.device != self.device:
            model = model.to(self.device)
        if model.dtype != self.dtype:  # from_pretrained already loaded it in self.dtype; no second cast (and warning)
            model = model.to(dtype=self.dtype)
        return model.eval().requires_grad_(False)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "Models":
        """Move the components loaded so far to ``device`` / ``dtype`` (None: keep) in place; components loaded later
        follow. Returns self."""
        if device is not None:
            self.device = torch.device(device)
        if dtype is not None:
            self.dtype = dtype
        for name in ("text_encoder", "vae", "_main_unet", "unet_inpaint", "clip", "instruction_encoder"):
            if name in self.__dict__:
                self.__dict__[name] = self._frozen(self.__dict__[name])
        return self

    def describe(self) -> dict[str, str]:
        """Model identity recorded in outputs (PNG metadata, results.json)."""
        d = {"generator": self.model_id}
        if self._clip_loc:
            d["clip"] = self._clip_loc
        if self._ins_loc:
            d["instruction_encoder"] = self._ins_loc
        return d

    # -- Stable Diffusion components ---------------------------------------------------------------
    @functools.cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.location, **self._kw("tokenizer"))

    @functools.cached_property
    def text_encoder(self):
        from transformers import CLIPTextModel

        return self._frozen(CLIPTextModel.from_pretrained(self.location, torch_dtype=self.dtype, **self._kw("text_encoder")))

    @functools.cached_property
    def vae(self):
        from diffusers import AutoencoderKL

        return self._frozen(AutoencoderKL.from_pretrained(self.location, torch_dtype=self.dtype, **self._kw("vae")))

    @functools.cached_property
    def _main_unet(self):
        from diffusers import UNet2DConditionModel

        return self._frozen(UNet2DConditionModel.from_pretrained(self.location, torch_dtype=self.dtype, **self._kw("unet")))

    @property
    def unet(self):
        """Text-to-image UNet (4 input channels), or None for an inpainting-only checkpoint."""
        u = self._main_unet
        return None if u.config.in_channels == 9 else u

    @functools.cached_property
    def unet_inpaint(self):
        """Inpainting UNet (9 input channels: latents, mask, masked-image latents)."""
        from diffusers import UNet2DConditionModel

        if self._inpaint_loc is not None:
            sub = "unet" if (Path(self._inpaint_loc) / "unet").exists() else None
            return self._frozen(UNet2DConditionModel.from_pretrained(self._inpaint_loc, torch_dtype=self.dtype, **self._kw(sub)))
        if self._has("unet_inpaint") and Path(self.location, "unet_inpaint").exists():
            return self._frozen(UNet2DConditionModel.from_pretrained(self.location, torch_dtype=self.dtype, **self._kw("unet_inpaint")))
        u = self._main_unet
        if u.config.in_channels != 9:
            raise ValueError(
                f"{self.model_id} has no inpainting UNet (its unet has {u.config.in_channels} input channels); "
                "pass inpaint=<an SD-inpainting id or folder>"
            )
        return u

    @functools.cached_property
    def folder_scheduler(self):
        """The scheduler class the folder's ``scheduler_config.json`` names (``_class_name``: PNDMScheduler,
        EulerDiscreteScheduler, ...), or the ``scheduler=`` class built from that config; not checked against the
        latent-blending loop (diffusers' own pipelines run any of them)."""
        import diffusers

        cfg = diffusers.DDIMScheduler.load_config(self.location, **self._kw("scheduler"))
        name = self._scheduler_name or cfg.get("_class_name") or "DDIMScheduler"
        cls = getattr(diffusers, name, None)
        if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
            where = "was asked for" if self._scheduler_name else f"is what {self.model_id}/scheduler names"
            raise ValueError(f"scheduler {name!r} {where}, but diffusers {diffusers.__version__} has no such scheduler "
                             "class; pass scheduler='DDIMScheduler' (or another diffusers scheduler class name)")
        return cls.from_config(cfg)

    @functools.cached_property
    def scheduler(self):
        """The scheduler of regionedit's own loop (:class:`regionedit.generate.InpaintGenerator`): the folder's class
        (:attr:`folder_scheduler`), or a ValueError naming it when it cannot run there (see :func:`check_loop_scheduler`)."""
        s = self.folder_scheduler
        check_loop_scheduler(s, self.model_id)
        return s

    # -- CLIP (region prediction, scoring) ----------------------------------------------------------
    def _clip_source(self) -> tuple[str, dict]:
        if self._clip_loc is not None:
            return self._clip_loc, {"local_files_only": self._local_only}
        return self.location, self._kw("clip")

    @functools.cached_property
    def clip(self):
        from transformers import CLIPModel

        loc, kw = self._clip_source()
        return self._frozen(CLIPModel.from_pretrained(loc, torch_dtype=self.dtype, **kw))

    @functools.cached_property
    def clip_processor(self):
        from transformers import CLIPImageProcessor

        loc, kw = self._clip_source()
        return CLIPImageProcessor.from_pretrained(loc, **kw)

    @functools.cached_property
    def clip_tokenizer(self):
        from transformers import AutoTokenizer

        loc, kw = self._clip_source()
        return AutoTokenizer.from_pretrained(loc, **kw)

    # -- instruction encoder (F_ins) --------------------------------------------------------------
    def _ins_source(self) -> tuple[str, dict]:
        if self._ins_loc is not None:
            return self._ins_loc, {"local_files_only": self._local_only}
        return self.location, self._kw("instruction_encoder")

    @functools.cached_property
    def instruction_encoder(self):
        from transformers import T5EncoderModel

        loc, kw = self._ins_source()
        return self._frozen(T5EncoderModel.from_pretrained(loc, torch_dtype=self.dtype, **kw))

    @functools.cached_property
    def instruction_tokenizer(self):
        from transformers import AutoTokenizer

        loc, kw = self._ins_source()
        return AutoTokenizer.from_pretrained(loc, **kw)

    # -- stock diffusers pipelines over these components ------------------------------------------
    def text_to_image_pipeline(self):
        """diffusers' own StableDiffusionPipeline over the loaded components (no safety checker)."""
        from diffusers import StableDiffusionPipeline

        return StableDiffusionPipeline(vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
                                       unet=self.unet, scheduler=self.folder_scheduler, safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)

    def inpaint_pipeline(self):
        """diffusers' own StableDiffusionInpaintPipeline over the loaded components."""
        from diffusers import StableDiffusionInpaintPipeline

        return StableDiffusionInpaintPipeline(vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
                                              unet=self.unet_inpaint, scheduler=self.folder_scheduler, safety_checker=None,
                                              feature_extractor=None, requires_safety_checker=False)

    def training_state(self, component: str) -> dict:
        """The ``training_state.json`` of a bundled component ({} when absent)."""
        p = Path(self.location) / component / "training_state.json"
        return json.loads(p.read_text()) if p.exists() else {}


# the loop calls these (regionedit/generate/inpaint.py): set_timesteps, init_noise_sigma, scale_model_input, step, add_noise
LOOP_API = ("set_timesteps", "init_noise_sigma", "scale_model_input", "step", "add_noise")
LOOP_FIX = ("pass scheduler='DDIMScheduler' (or PNDMScheduler, EulerDiscreteScheduler, DPMSolverMultistepScheduler, "
            "UniPCMultistepScheduler) to regionedit.models.load, or generate with "
            "regionedit.generate.PipelineInpaintGenerator.from_pretrained(<the pipeline folder>), which runs diffusers' "
            "own pipeline with this scheduler")


def check_loop_scheduler(scheduler, model_id: str = "the model") -> None:
    """Raise ValueError naming ``scheduler``'s class when it cannot run in regionedit's own latent-blending loop:

    * it lacks part of the loop's API (:data:`LOOP_API`): flow-matching schedulers (no ``add_noise`` /
      ``init_noise_sigma``), DDIMInverseScheduler;
    * it draws fresh noise inside ``step`` (DDPM, Euler ancestral, KDPM2 ancestral, LCM, TCD, SA-Solver, SDE variants):
      the loop passes no generator to ``step``, so the noise would come from torch's global generator and the edit
      would not follow its seed.

    The check runs two steps of a copy on a small random tensor inside ``torch.random.fork_rng`` (the global
    generator is left as it was). Deterministic ODE solvers pass: DDIM, PNDM, Euler, Heun, LMS, KDPM2, DPM-Solver++
    (multistep / singlestep), DEIS, UniPC."""
    name = type(scheduler).__name__
    missing = [a for a in LOOP_API if not hasattr(scheduler, a)]
    if missing:
        raise ValueError(f"{model_id}'s {name} cannot run in regionedit's own latent-blending loop (it has no "
                         f"{', '.join(missing)}; flow-matching and inversion schedulers do not fit it); {LOOP_FIX}")
    probe = copy.deepcopy(scheduler)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((1, 4, 4, 4), generator=gen)
    eps = torch.randn((1, 4, 4, 4), generator=gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        before = torch.random.get_rng_state()
        try:
            probe.set_timesteps(10)
            for t in probe.timesteps[:2]:
                x = probe.step(eps, t, probe.scale_model_input(x, t)).prev_sample
        except Exception as e:  # noqa: BLE001 - any failure here is "cannot run in the loop"
            raise ValueError(f"{model_id}'s {name} cannot run in regionedit's own latent-blending loop (two probe "
                             f"steps failed: {type(e).__name__}: {e}); {LOOP_FIX}") from e
        stochastic = not torch.equal(before, torch.random.get_rng_state())
    if stochastic:
        raise ValueError(f"{model_id}'s {name} draws fresh noise in every step, which regionedit's own latent-blending "
                         f"loop does not seed (the edit would not follow its seed); {LOOP_FIX}")


def load(name_or_path: str | Path = "shapes-64", **kwargs) -> Models:
    """Load (lazily) the models for ``name_or_path``: ``"shapes-64"`` (bundled), a local folder in
    diffusers layout, or a Hugging Face id. Keyword arguments: see :class:`Models`."""
    return Models(name_or_path, **kwargs)
