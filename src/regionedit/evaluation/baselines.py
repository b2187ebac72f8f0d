"""Editing methods compared by the evaluation harness, all built from the same bundled models.

Every method is a small class with a ``name``, a ``params`` dict (every setting that changes its
output, reported in ``results.json``) and

    method(image, instruction, seed, sample) -> (edited, region, status)

with ``image`` the ``(H, W, 3)`` uint8 input, ``sample`` the harness's
:class:`~regionedit.evaluation.harness.EvalSample` (its ground-truth mask for the oracle, its prompts
for the prompt-driven baselines), ``edited`` a ``(H, W, 3)`` uint8 image of the input's size,
``region`` the ``(H, W)`` bool region the method edited (None for global methods, which may change
every pixel) and ``status`` ``"edited"`` or ``"no_edit"``.

Methods (:data:`METHODS`):

``region``
    our :class:`~regionedit.pipeline.Editor`, mask-free (the learned region predictor), with the priors of the
    plugin the model folder names (the shapes world's rules for the bundled models). Needs
    ``<model>/region_predictor``.
``region-learned``
    the same Editor without priors: the learned parts alone (region predictor, generator), thresholds calibrated
    for them where the folder has such.
``oracle``
    the same Editor given the ground-truth edit mask (``mask=sample.mask``): the upper bound of
    localisation. Needs datasets with masks.
``diffedit``
    diffusers' own ``StableDiffusionDiffEditPipeline``, unmodified, on the bundled text-to-image
    components: ``generate_mask(source_prompt, target_prompt)`` -> ``invert(source_prompt)`` ->
    ``__call__(target_prompt, negative_prompt=source_prompt)`` (the diffusers DiffEdit guide); its
    latent mask is returned upsampled (nearest) to the image size.
``sdedit``
    diffusers' ``StableDiffusionImg2ImgPipeline`` with the target description (SDEdit, global:
    no region, every pixel may change).
``instructpix2pix``
    diffusers' ``StableDiffusionInstructPix2PixPipeline`` with the 8-channel UNet of
    ``<model>/unet_ip2p`` (prompt = the instruction).
``descriptive``
    DescriptiveEdit (seed 004, :class:`~regionedit.methods.DescriptiveEdit`) with the trained Attention Bridges of
    ``<model>/descriptive_edit`` (``regionedit train descriptive``), driven by the target description (global).
``region_in_context``
    Region in Context (seed 000, :class:`~regionedit.methods.region_in_context.RegionInContext`) with the trained
    weights of ``<model>/region_in_context`` (``regionedit train region_in_context``) on ``<model>/unet_ip2p``:
    the whole image as the region, the generated image kept as is (global).
``region_in_context-compose``
    the same, its region the model's learned region predictor's (``<model>/region_predictor``, ground-truth free),
    the generation composed into the source inside it (bit-exact outside).
``region_in_context-gate_off``
    ``region_in_context`` with the seed's gate ablation (g = 0: the region embedding without the image context) on
    the trained weights, at inference: what the context branch contributes.
``adaptedit``, ``adaptedit-compose``, ``adaptedit-no_predictor``, ``adaptedit-no_gate``, ``adaptedit-no_region_loss``
    AdaptEdit (seed 002) on the frozen DiT ``<model>/dit`` and its ablations (:mod:`.dit_methods`).
``fireedit``, ``fireedit-compose``, ``fireedit-no_region_tokens``, ``fireedit-no_tati``, ``fireedit-no_hvca``
    FireEdit (seed 003) on ``<model>/unet_ip2p`` and its ablations (:mod:`.fireedit_methods`).

The stock pipelines run at the text-to-image model's native resolution (UNet ``sample_size`` x VAE
downsampling): the input is resized to it and the output back to the input size (PIL bicubic), so
every method sees the same pixels. A method that cannot be built raises :class:`MethodUnavailable`
with the reason, and the harness lists it as skipped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from regionedit.evaluation.dit_methods import ADAPTEDIT_METHODS
from regionedit.evaluation.fireedit_methods import FIREEDIT_METHODS

METHODS: tuple[str, ...] = ("region", "region-learned", "oracle", "diffedit", "sdedit", "instructpix2pix", "descriptive",
                             "descriptive-compose", "descriptive-instruction", "region_in_context",
                             "region_in_context-compose", "region_in_context-gate_off", *ADAPTEDIT_METHODS, *FIREEDIT_METHODS)

RESIZE_FILTER = "bicubic"  # PIL filter of the stock pipelines' resize to / from their native size


class MethodUnavailable(RuntimeError):
    """A method cannot run with these models or this dataset; the message says why."""


class Method(Protocol):
    name: str
    params: dict[str, Any]

    def __call__(
        self, image: np.ndarray, instruction: str, seed: int, sample: Any
    ) -> tuple[np.ndarray, np.ndarray | None, str]: ...


@dataclasses.dataclass
class MethodSettings:
    """Settings shared by all methods (reported with the results)."""

    steps: int = 20  # denoising steps of every method
    guidance: float = 4.0  # classifier-free guidance scale of every method (the Editor's default)
    sdedit_strength: float = 0.6  # img2img strength of SDEdit
    diffedit_mask_encode_strength: float = 0.5  # diffusers defaults
    diffedit_inpaint_strength: float = 0.8
    diffedit_num_maps_per_mask: int = 10
    diffedit_mask_thresholding_ratio: float = 3.0
    ip2p_image_guidance: float = 1.5  # InstructPix2Pix image guidance (the pipeline's default)
    candidates: int = 3  # our editor (region, oracle): generator candidates, the one CLIP reads best kept (EditorConfig)


# ------------------------------------------------------------------------------------------------
# helpers


def _resize(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == tuple(hw):
        return image
    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.Resampling.BICUBIC))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Pipeline ``output_type="np"`` image (float in [0, 1]) -> uint8."""
    return (np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _vae_factor(models) -> int:
    return 2 ** (len(models.vae.config.block_out_channels) - 1)


def _load_component(what: str, fn):
    try:
        return fn()
    except MethodUnavailable:
        raise
    except Exception as e:  # missing folder / files / wrong checkpoint
        first = str(e).splitlines()[0] if str(e) else ""
        raise MethodUnavailable(f"cannot load {what} ({type(e).__name__}: {first})") from e


def _require_folder(models, sub: str, what: str) -> None:
    """A local model folder without ``sub/``: say so (rather than diffusers' 'no config.json')."""
    root = Path(models.location)
    if root.is_dir() and not (root / sub / "config.json").exists():
        raise MethodUnavailable(f"{root} has no {sub}/ ({what} is missing: not trained or not installed yet; "
                                "`regionedit train world-models` builds the bundled components)")


def text_to_image_unet(models):
    """The 4-channel text-to-image UNet of ``models`` or :class:`MethodUnavailable`."""
    _require_folder(models, "unet", "the text-to-image UNet")
    unet = _load_component("the text-to-image UNet (<model>/unet)", lambda: models.unet)
    if unet is None:
        raise MethodUnavailable(f"{models.model_id} has only an inpainting UNet (9 channels); the stock baselines "
                                "need a 4-channel text-to-image UNet")
    return unet


def native_size(models) -> int:
    """Pixel size the text-to-image UNet works at: ``sample_size`` x VAE downsampling."""
    return int(text_to_image_unet(models).config.sample_size) * _vae_factor(models)


class _StockPipeline:
    """Shared logic of the diffusers baselines: resize to the native size, run, resize back."""

    name = "stock"

    def __init__(self, models, settings: MethodSettings):
        self.models, self.settings = models, settings
        self.size = native_size(models)
        for comp in ("vae", "text_encoder", "tokenizer", "scheduler"):
            _load_component(f"the {comp} (<model>/{comp})", lambda c=comp: getattr(models, c))

    def _scheduler(self):
        from diffusers import DDIMScheduler

        return DDIMScheduler.from_config(self.models.scheduler.config)

    def _input(self, image: np.ndarray) -> Image.Image:
        return Image.fromarray(_resize(image, (self.size, self.size)))

    def _output(self, out: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        return _resize(_to_uint8(out), hw)

    def _base_params(self) -> dict[str, Any]:
        return {"steps": self.settings.steps, "guidance": self.settings.guidance, "resolution": self.size,
                "resize": f"PIL {RESIZE_FILTER} to {self.size}x{self.size} and back to the input size",
                "scheduler": "DDIMScheduler.from_config(<model>/scheduler)"}


# ------------------------------------------------------------------------------------------------
# our editor


class RegionMethod:
    """Our :class:`~regionedit.pipeline.Editor`, mask-free (needs a region predictor)."""

    name = "region"

    def __init__(self, editor, name: str = "region"):
        self.name = name
        if editor.region_predictor is None:
            raise MethodUnavailable(
                f"no region predictor in {editor.models.location}/region_predictor: train one with "
                "`regionedit train region` (the oracle row, with ground-truth masks, still runs)"
            )
        self.editor = editor
        self.params = {"editor": dataclasses.asdict(editor.config), "inputs": "image + instruction (no caption)",
                       "priors": {p.name: _settings(p) for p in editor.priors},
                       "resolution": f"crop around the region resized to {editor.generator.native_size}px"}

    last_reason: str | None = None  # why the last call made no edit (recorded per sample)

    def __call__(self, image, instruction, seed, sample):
        res = self.editor(image, instruction, seed=seed)
        self.last_reason = res.reason
        return res.image, res.mask, res.status


class OracleMethod:
    """The same Editor with the ground-truth edit mask: localisation upper bound."""

    name = "oracle"
    last_reason: str | None = None

    def __init__(self, editor):
        self.editor = editor
        self.params = {"editor": dataclasses.asdict(editor.config), "inputs": "image + instruction + ground-truth mask (empty for absent referents: no edit)",
                       "resolution": f"crop around the region resized to {editor.generator.native_size}px"}

    def __call__(self, image, instruction, seed, sample):
        if sample.mask is None:
            raise MethodUnavailable("oracle needs a ground-truth mask and this sample has none")
        res = self.editor(image, instruction, seed=seed, mask=sample.mask)
        self.last_reason = res.reason
        return res.image, res.mask, res.status


# ------------------------------------------------------------------------------------------------
# stock diffusers baselines


class DiffEditMethod(_StockPipeline):
    """diffusers' ``StableDiffusionDiffEditPipeline`` driven as in the diffusers DiffEdit guide."""

    name = "diffedit"

    def __init__(self, models, settings: MethodSettings):
        super().__init__(models, settings)
        try:
            from diffusers import DDIMInverseScheduler, StableDiffusionDiffEditPipeline
        except ImportError as e:
            raise MethodUnavailable(f"this diffusers has no StableDiffusionDiffEditPipeline ({e})") from e
        m = models
        self.pipe = StableDiffusionDiffEditPipeline(
            vae=m.vae, text_encoder=m.text_encoder, tokenizer=m.tokenizer, unet=text_to_image_unet(m),
            scheduler=self._scheduler(), safety_checker=None, feature_extractor=None,
            inverse_scheduler=DDIMInverseScheduler.from_config(m.scheduler.config), requires_safety_checker=False,
        )
        self.pipe.set_progress_bar_config(disable=True)
        s = settings
        self.params = {
            **self._base_params(),
            "inverse_scheduler": "DDIMInverseScheduler.from_config(<model>/scheduler)",
            "mask_encode_strength": s.diffedit_mask_encode_strength,
            "inpaint_strength": s.diffedit_inpaint_strength,
            "num_maps_per_mask": s.diffedit_num_maps_per_mask,
            "mask_thresholding_ratio": s.diffedit_mask_thresholding_ratio,
            "calls": "generate_mask(image, source_prompt=source caption, target_prompt=target description); "
                     "invert(image, prompt=source caption); __call__(prompt=target description, "
                     "negative_prompt=source caption, mask_image, image_latents)",
            "region": "generate_mask's latent mask, nearest-upsampled to the image size",
        }

    def __call__(self, image, instruction, seed, sample):
        s, g = self.settings, _generator(seed)
        src, tgt = sample.source_prompt, sample.target_prompt
        x = self._input(image)
        mask = self.pipe.generate_mask(
            image=x, source_prompt=src, target_prompt=tgt, num_maps_per_mask=s.diffedit_num_maps_per_mask,
            mask_encode_strength=s.diffedit_mask_encode_strength,
            mask_thresholding_ratio=s.diffedit_mask_thresholding_ratio, num_inference_steps=s.steps,
            guidance_scale=s.guidance, generator=g,
        )
        latents = self.pipe.invert(prompt=src, image=x, num_inference_steps=s.steps, inpaint_strength=s.diffedit_inpaint_strength,
                                   guidance_scale=s.guidance, generator=g).latents
        out = self.pipe(prompt=tgt, mask_image=mask, image_latents=latents, negative_prompt=src,
                        inpaint_strength=s.diffedit_inpaint_strength, num_inference_steps=s.steps,
                        guidance_scale=s.guidance, generator=g, output_type="np").images[0]
        hw = image.shape[:2]
        m = torch.as_tensor(np.asarray(mask), dtype=torch.float32).reshape(1, 1, *np.asarray(mask).shape[-2:])
        region = torch.nn.functional.interpolate(m, size=hw, mode="nearest")[0, 0].numpy() >= 0.5
        return self._output(out, hw), region, "edited"


class SDEditMethod(_StockPipeline):
    """SDEdit: diffusers' ``StableDiffusionImg2ImgPipeline`` with the target description (global)."""

    name = "sdedit"

    def __init__(self, models, settings: MethodSettings):
        super().__init__(models, settings)
        from diffusers import StableDiffusionImg2ImgPipeline

        m = models
        self.pipe = StableDiffusionImg2ImgPipeline(
            vae=m.vae, text_encoder=m.text_encoder, tokenizer=m.tokenizer, unet=text_to_image_unet(m),
            scheduler=self._scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        self.pipe.set_progress_bar_config(disable=True)
        self.params = {**self._base_params(), "strength": settings.sdedit_strength,
                       "prompt": "target description", "region": None}

    def __call__(self, image, instruction, seed, sample):
        s = self.settings
        out = self.pipe(prompt=sample.target_prompt, image=self._input(image), strength=s.sdedit_strength,
                        num_inference_steps=s.steps, guidance_scale=s.guidance, generator=_generator(seed),
                        output_type="np").images[0]
        return self._output(out, image.shape[:2]), None, "edited"


IP2P_SUBFOLDER = "unet_ip2p"


class InstructPix2PixMethod(_StockPipeline):
    """diffusers' ``StableDiffusionInstructPix2PixPipeline`` with ``<model>/unet_ip2p`` (8 channels)."""

    name = "instructpix2pix"

    def __init__(self, models, settings: MethodSettings):
        folder = Path(models.location) / IP2P_SUBFOLDER
        if not (folder / "config.json").exists():
            raise MethodUnavailable(
                f"no InstructPix2Pix UNet at {folder}: the 8-channel UNet has not been trained yet "
                f"(its trainer will write {IP2P_SUBFOLDER}/ next to the other components)"
            )
        from diffusers import StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel

        unet = _load_component(f"the InstructPix2Pix UNet ({folder})", lambda: UNet2DConditionModel.from_pretrained(folder))
        if unet.config.in_channels != 8:
            raise MethodUnavailable(f"{folder} has {unet.config.in_channels} input channels; InstructPix2Pix needs 8")
        self.unet = unet.to(models.device, models.dtype).eval().requires_grad_(False)
        self.models, self.settings = models, settings
        self.size = int(unet.config.sample_size) * _vae_factor(models)
        m = models
        self.pipe = StableDiffusionInstructPix2PixPipeline(
            vae=m.vae, text_encoder=m.text_encoder, tokenizer=m.tokenizer, unet=self.unet,
            scheduler=self._scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        )
        self.pipe.set_progress_bar_config(disable=True)
        self.params = {**self._base_params(), "unet": str(folder), "weights": str(folder),  # --write-cards records here
                       "image_guidance": settings.ip2p_image_guidance,
                       "prompt": "the instruction", "region": None}

    def __call__(self, image, instruction, seed, sample):
        s = self.settings
        out = self.pipe(prompt=instruction, image=self._input(image), num_inference_steps=s.steps,
                        guidance_scale=s.guidance, image_guidance_scale=s.ip2p_image_guidance,
                        generator=_generator(seed), output_type="np").images[0]
        return self._output(out, image.shape[:2]), None, "edited"


# ------------------------------------------------------------------------------------------------
# seed methods with trained weights in the model folder

DESCRIPTIVE_SUBFOLDER = "descriptive_edit"
RIC_SUBFOLDER = "region_in_context"


def train_command(method: str, models, folder: Path) -> str:
    """The ``regionedit train ...`` command that writes ``folder`` (the trained weights of ``method``), as a sentence."""
    from regionedit.training.common import inside_bundled

    loc = str(models.location)
    if inside_bundled(folder):
        return (f"train them with `regionedit train {method} --model {models.model_id} --out runs/{method}` and copy "
                f"runs/{method}/export to {folder.name}/ in a copy of the model folder (then --model that copy)")
    return f"train them with `regionedit train {method} --model {loc} --out runs/{method} --export {folder}`"


def _weights_folder(models, sub: str, files: tuple[str, ...], method: str, what: str) -> Path:
    folder = Path(models.location) / sub
    if not all((folder / f).is_file() for f in files):
        raise MethodUnavailable(f"no trained {what} at {folder}: {train_command(method, models, folder)}")
    return folder


def _learned_localizer(models, method: str):
    """The region the ``region-learned`` row edits, for the ``-compose`` rows that paste a seed method's result into
    the source inside it: ``(image, instruction) -> (H, W) bool``, the decision rule of the Editor over
    ``<model>/region_predictor`` without priors (:meth:`~regionedit.pipeline.Editor.find_region`: the thresholds
    calibrated for the learned parts alone, the presence gate on edits of an existing object). No ground truth."""
    pred_dir = Path(models.location) / "region_predictor"
    if not (pred_dir / "config.json").is_file():
        raise MethodUnavailable(f"no region predictor in {pred_dir} ({method} composes inside the predicted region): "
                                "train one with `regionedit train region`")
    from regionedit.pipeline import Editor

    editor = _load_component(f"the region predictor ({pred_dir})", lambda: Editor.from_models(models, priors=False))
    return lambda image, instruction: editor.find_region(np.asarray(image), instruction)[0]


class DescriptiveMethod:
    """DescriptiveEdit (seed 004) with the bridges of ``<model>/descriptive_edit``: the target description (the
    harness's ``target_prompt``; else the method's describer on the instruction) with dual guidance.
    ``compose=False``: the whole generated image is kept (global); ``compose=True`` (``descriptive-compose``): it
    is pasted into the source inside the learned region predictor's region for the instruction (bit-exact
    outside; no region found: no edit). ``from_instruction=True`` (``descriptive-instruction``): the instruction
    alone, turned into a description by the method's general describer (no dataset caption), the input every
    instruction-driven row gets."""

    last_reason: str | None = None

    def __init__(self, models, settings: MethodSettings, compose: bool = False, from_instruction: bool = False):
        from regionedit.methods.descriptive_edit import WEIGHTS_NAME, DescriptiveEdit

        if compose and from_instruction:
            raise ValueError("descriptive rows: compose and from_instruction are separate rows")
        self.name = "descriptive-compose" if compose else "descriptive-instruction" if from_instruction else "descriptive"
        self.compose, self.from_instruction = compose, from_instruction
        self.localizer = _learned_localizer(models, self.name) if compose else None

        folder = _weights_folder(models, DESCRIPTIVE_SUBFOLDER, ("config.json", WEIGHTS_NAME), "descriptive",
                                 "DescriptiveEdit bridges")
        self.method = _load_component(f"the DescriptiveEdit bridges ({folder})", lambda: DescriptiveEdit.from_pretrained(
            folder, models=models, steps=settings.steps, lambda_T=settings.guidance, lambda_I=settings.ip2p_image_guidance))
        self.settings = settings
        self.params = {"weights": str(folder), "steps": settings.steps, "lambda_T": settings.guidance,
                       "lambda_I": settings.ip2p_image_guidance, "config": self.method.config.to_dict(),
                       "prompt": ("the describer's description of the instruction (no caption)" if from_instruction
                                  else "target description (else the describer's description of the instruction)"),
                       "resolution": f"Lanczos to {self.method.native_size}x{self.method.native_size} and back",
                       "region": "the learned region predictor's (<model>/region_predictor)" if compose else None,
                       "compose": compose}

    def __call__(self, image, instruction, seed, sample):
        self.last_reason = None
        region = None
        if self.compose:
            from regionedit.methods.region_context import _localized

            region = _localized(self.localizer(np.asarray(image), instruction))
            if region is None or not region.any():
                self.last_reason = "the region predictor found no region"
                return np.asarray(image).copy(), np.zeros(np.asarray(image).shape[:2], bool), "no_edit"
        description = None if self.from_instruction else getattr(sample, "target_prompt", None)
        try:
            if description:
                out = self.method(image, description, is_description=True, seed=seed)
            else:
                caption = None if self.from_instruction else getattr(sample, "source_caption", None)
                out = self.method(image, instruction, seed=seed, source_caption=caption)
        except ValueError as e:  # the describer cannot read the instruction
            self.last_reason = str(e)
            return np.asarray(image).copy(), region, "no_edit"
        if region is not None:
            from regionedit.compose import compose

            out = compose(np.asarray(image), out, region)
        return out, region, "edited"


class RegionInContextMethod:
    """Region in Context (seed 000) with the weights of ``<model>/region_in_context``
    (:class:`~regionedit.methods.region_in_context.EvalAdapter`). ``compose=False``: the whole image is the region
    and the generation is kept (global); ``compose=True``: the region is the model's learned region predictor's
    (no ground truth) and the generation is composed into the source inside it."""

    last_reason: str | None = None

    def __init__(self, models, settings: MethodSettings, compose: bool = False, gate_off: bool = False):
        from regionedit.methods.region_in_context import CONFIG_FILE, WEIGHTS_FILE, EvalAdapter, RegionInContext

        if compose and gate_off:
            raise ValueError("region_in_context rows: compose and gate_off are separate rows")
        self.name = ("region_in_context-compose" if compose else "region_in_context-gate_off" if gate_off
                     else "region_in_context")
        self.compose = compose
        folder = _weights_folder(models, RIC_SUBFOLDER, (CONFIG_FILE, WEIGHTS_FILE), "region_in_context",
                                 "Region in Context weights")
        localizer = _learned_localizer(models, self.name) if compose else None
        method = _load_component(f"Region in Context ({folder})",
                                 lambda: RegionInContext.from_pretrained(folder, models=models, localizer=localizer))
        self.adapter = EvalAdapter(method, region_source="localizer" if compose else "whole", compose=compose,
                                   steps=settings.steps, image_guidance=settings.ip2p_image_guidance,
                                   text_guidance=settings.guidance, name=self.name, gate_off=gate_off)
        self.params = {**self.adapter.params, "weights": str(folder),
                       "region": "the learned region predictor's (<model>/region_predictor)" if compose else None}

    def __call__(self, image, instruction, seed, sample):
        edited, region, status = self.adapter(image, instruction, seed, sample)
        self.last_reason = "the region predictor found no region" if status == "no_edit" else None
        return edited, (region if self.compose else None), status


# ------------------------------------------------------------------------------------------------
# building


def _settings(prior) -> dict[str, Any]:
    """A prior's settings for the record (its dataclass config, when it has one)."""
    cfg = getattr(prior, "config", None)
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {}


def load_editor(models, steps: int, guidance: float, candidates: int = 3, priors: bool = True):
    """Our Editor over ``models`` (with ``<model>/region_predictor`` and the folder's plugin when present;
    ``priors=False``: the learned parts alone)."""
    from regionedit.pipeline import Editor, EditorConfig

    root = Path(models.location)
    if (getattr(models, "_inpaint_loc", None) is None and root.is_dir()
            and not any((root / sub / "config.json").exists() for sub in ("unet_inpaint", "unet"))):
        raise MethodUnavailable(f"{root} has neither unet_inpaint/ nor unet/: the inpainting UNet is missing (not "
                                "trained or not installed yet; `regionedit train world-models` builds the bundled components)")
    editor = Editor.from_models(models, EditorConfig(steps=steps, guidance=guidance, candidates=candidates), priors=priors)
    _ = editor.generator.native_size  # loads the inpainting UNet: fail here, not mid-run
    return editor


def build_methods(
    names: list[str], models, settings: MethodSettings, has_masks: bool = True
) -> tuple[dict[str, Method], dict[str, str]]:
    """Build the requested methods over one set of models.

    Args:
        names: method names (see :data:`METHODS`), in the order wanted.
        models: a :class:`regionedit.models.Models` shared by every method.
        settings: steps, guidance and per-method settings.
        has_masks: whether the dataset has ground-truth masks (else ``oracle`` is skipped).

    Returns:
        ``(methods, skipped)``: name -> method for those that could be built, name -> reason for
        the others.
    """
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    methods: dict[str, Method] = {}
    skipped: dict[str, str] = {}
    editor = learned = None
    editor_error: str | None = None
    for name in names:
        try:
            if name == "region-learned":
                learned = _load_component("the Editor (inpainting UNet)", lambda: load_editor(
                    models, settings.steps, settings.guidance, settings.candidates, priors=False))
                methods[name] = RegionMethod(learned, name)
            elif name in ("region", "oracle"):
                if name == "oracle" and not has_masks:
                    raise MethodUnavailable("the dataset has no ground-truth masks (oracle needs them)")
                if editor is None and editor_error is None:
                    try:
                        editor = _load_component("the Editor (inpainting UNet)",
                                                 lambda: load_editor(models, settings.steps, settings.guidance, settings.candidates))
                    except MethodUnavailable as e:
                        editor_error = str(e)
                if editor is None:
                    raise MethodUnavailable(editor_error or "the Editor could not be built")
                methods[name] = RegionMethod(editor) if name == "region" else OracleMethod(editor)
            elif name == "diffedit":
                methods[name] = DiffEditMethod(models, settings)
            elif name == "sdedit":
                methods[name] = SDEditMethod(models, settings)
            elif name == "instructpix2pix":
                methods[name] = InstructPix2PixMethod(models, settings)
            elif name in ("descriptive", "descriptive-compose", "descriptive-instruction"):
                methods[name] = DescriptiveMethod(models, settings, compose=name.endswith("-compose"),
                                                  from_instruction=name.endswith("-instruction"))
            elif name in ("region_in_context", "region_in_context-compose", "region_in_context-gate_off"):
                methods[name] = RegionInContextMethod(models, settings, compose=name.endswith("-compose"),
                                                      gate_off=name.endswith("-gate_off"))
            elif name in ADAPTEDIT_METHODS:
                from regionedit.evaluation.dit_methods import AdaptEditMethod

                methods[name] = AdaptEditMethod(name, models, settings)
            elif name in FIREEDIT_METHODS:
                from regionedit.evaluation.fireedit_methods import FireEditMethod

                methods[name] = FireEditMethod(name, models, settings)
        except MethodUnavailable as e:
            skipped[name] = str(e)
    return methods, skipped
