"""One function to load the models an editor needs: the bundled shapes-64 folder, any local
diffusers/transformers folder, or a Hugging Face id.

>>> from regionedit import models
>>> m = models.load("shapes-64")                       # bundled miniature models
>>> m = models.load("runwayml/stable-diffusion-inpainting",
...                 clip="openai/clip-vit-large-patch14",
...                 instruction_encoder="google/flan-t5-base")   # real models, same code path

Components load lazily on first access, always in float32 on the CPU unless asked otherwise.
"""

from __future__ import annotations

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
    ):
        self.location, local = resolve(name_or_path)
        self.model_id = str(name_or_path)
        self.dtype, self.device = dtype, torch.device(device)
        self._clip_loc = resolve(clip)[0] if clip is not None else None
        self._ins_loc = resolve(instruction_encoder)[0] if instruction_encoder is not None else None
        self._inpaint_loc = resolve(inpaint)[0] if inpaint is not None else None
        self._local_only = local if local_files_only is None else local_files_only

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
        return model.to(self.device, self.dtype).eval().requires_grad_(False)

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
    def scheduler(self):
        from diffusers import DDIMScheduler

        return DDIMScheduler.from_pretrained(self.location, **self._kw("scheduler"))

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
                                       unet=self.unet, scheduler=self.scheduler, safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)

    def inpaint_pipeline(self):
        """diffusers' own StableDiffusionInpaintPipeline over the loaded components."""
        from diffusers import StableDiffusionInpaintPipeline

        return StableDiffusionInpaintPipeline(vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
                                              unet=self.unet_inpaint, scheduler=self.scheduler, safety_checker=None,
                                              feature_extractor=None, requires_safety_checker=False)

    def training_state(self, component: str) -> dict:
        """The ``training_state.json`` of a bundled component ({} when absent)."""
        p = Path(self.location) / component / "training_state.json"
        return json.loads(p.read_text()) if p.exists() else {}


def load(name_or_path: str | Path = "shapes-64", **kwargs) -> Models:
    """Load (lazily) the models for ``name_or_path``: ``"shapes-64"`` (bundled), a local folder in
    diffusers layout, or a Hugging Face id. Keyword arguments: see :class:`Models`."""
    return Models(name_or_path, **kwargs)
