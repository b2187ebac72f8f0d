"""``Editor``: mask-free, region-aware instruction editing: describe -> localize -> generate -> compose.

    editor = Editor.from_pretrained("shapes-64")
    result = editor(image, "remove the red circle", seed=0)
    result.image, result.mask, result.status, result.target_description

Stages (numbered as in ``__call__``); each is a component passed in, and a plugin's :class:`~regionedit.core.Prior`
objects are consulted at fixed points (``priors=()`` runs the learned parts alone):

1. check inputs (image: any size, RGB; instruction: non-empty text); an image the model folder's domain guard
   reads as outside its domain (a photo given to the bundled shapes models) -> ``no_edit`` naming the flags for
   real models (:class:`~regionedit.core.domain.DomainGuard`). An instruction a prior splits into several
   edits runs them one after the other, each on the last one's result, all or nothing;
2. **describe**: instruction (+ source caption, when known) -> :class:`~regionedit.describe.Description`;
3. **localize**: the localizer's region probability and presence score for the edit's text (or a user mask,
   ``mask=``): presence below the calibrated threshold on an edit of an existing object -> ``no_edit``; the map
   thresholded, then put right and shaped by the priors (on images larger than the working side the decision
   runs at that size and the footprint comes back once); an empty region -> ``no_edit`` with a reason;
4. **generate**: the frozen inpainting model fills the region on a crop around it, resized to the model's native
   size (latent blending, seed 001 Appendix A); several candidates in one batch when a prior can score them;
5. **compose**: the patch is pasted back, blended inside the region; every pixel outside the reported mask is
   bit-identical to the input (enforced as the last step, whatever the priors did).

Images are ``(H, W, 3)`` uint8 RGB (row 0 at the top); masks ``(H, W)`` bool in the same frame.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from regionedit.compose import crop_resize, crop_resize_mask, paste_back, region_crop
from regionedit.core import CANDIDATE_STRIDE, EditResult, Prior
from regionedit.core.domain import DomainGuard
from regionedit.describe import Describer, TemplateDescriber
from regionedit.generate import InpaintConfig, InpaintGenerator
from regionedit.io import load_image, validate_instruction

from .config import EditorConfig
from .regions import RegionFinding, _frac

METHODS = ("region", "mask")

__all__ = ["CANDIDATE_STRIDE", "Editor", "EditorConfig", "EditResult", "METHODS"]


class Editor(RegionFinding):
    """Plain modules passed in: ``models`` (:class:`regionedit.models.Models`: the generator's components and
    CLIP), a region predictor (or any ``localizer``: ``(image, text, size) -> (prob, presence)``; None: only
    user masks), a describer (default :class:`~regionedit.describe.TemplateDescriber`) and the priors of a
    plugin (default none)."""

    def __init__(self, models=None, region_predictor=None, describer: Describer | None = None,
                 config: EditorConfig | None = None, priors: list[Prior] | tuple[Prior, ...] = (), localizer=None,
                 domain_guard: DomainGuard | None = None, generator=None, model_id: str | None = None):
        """``models``: the folder's :class:`regionedit.models.Models` (its generator, CLIP and instruction encoder);
        may be None when ``generator`` and ``localizer`` are given. ``generator``: any object with ``native_size``
        and ``(image, region, prompts, generator, steps, guidance) -> image`` (default: the folder's own,
        :class:`~regionedit.generate.InpaintGenerator`; a whole diffusers pipeline:
        :class:`~regionedit.generate.PipelineInpaintGenerator`). ``model_id``: the identity recorded in outputs
        (default: the folder's)."""
        from regionedit.localize.learned import LearnedLocalizer

        if models is None and generator is None:
            raise ValueError("an Editor needs a generator: pass models (a model folder's Models) or generator=... "
                             "(e.g. PipelineInpaintGenerator.from_pretrained(ID_OR_FOLDER))")
        self.models = models
        if localizer is None and region_predictor is not None:
            localizer = LearnedLocalizer(models, region_predictor)
        self.localizer = localizer
        self.describer = describer or TemplateDescriber()
        self.priors: list[Prior] = list(priors)
        self.config = config or EditorConfig()
        self.domain_guard = domain_guard  # None: no out-of-domain check (see EditorConfig.domain_guard)
        self.generator = generator if generator is not None else InpaintGenerator(
            models, InpaintConfig(steps=self.config.steps, guidance=self.config.guidance))
        self.model_id = model_id or (models.model_id if models is not None else
                                     str(getattr(generator, "model_id", type(generator).__name__)))
        self._describer_sees_image = _takes(self.describer, "image")
        self.component_specs: dict[str, str] = {}  # components named by id / folder / spec (save_pretrained records them)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, config: EditorConfig | None = None,
                        priors: bool | list[Prior] = True, plugin_options: dict | None = None, *, generator=None,
                        localizer=None, describer=None, clip: str | Path | None = None,
                        instruction_encoder: str | Path | None = None, torch_dtype=None, device=None,
                        **load_kwargs) -> "Editor":
        """Load an editor: a model folder (bundled name, folder or hub id; default ``"shapes-64"`` unless a
        ``generator`` is given) with its region predictor, its domain guard and the plugin it names in
        ``regionedit.json`` (the plugin's describer; its priors unless ``priors=False``; ``priors`` may also be a
        list of :class:`~regionedit.core.Prior`; ``plugin_options`` go to the plugin's ``priors(...)``), and any
        component swapped in by name or object (:mod:`regionedit.pipeline.components`):

        Args:
            generator: id / folder of a diffusers inpainting pipeline, loaded whole with its own scheduler (the
                folder's domain guard no longer applies), or a generator object.
            localizer: ``"learned"``, ``"learned:FOLDER"``, a zero-shot spec (``"clipseg:CIDAS/clipseg-rd64-refined"``,
                ``"owlv2:ID+sam:ID"``, ``"gdino:ID+sam:ID"``) or a callable ``(image, text, size) -> (prob, presence)``.
            describer: ``"grammar"``, the id / folder of a chat LM or VLM, or a describer object.
            clip, instruction_encoder: ids / folders of the CLIP and T5 encoder the learned predictor reads.
            torch_dtype: ``torch.float32`` / ``float16`` / ``bfloat16`` (or ``"fp32"``, ``"fp16"``, ``"bf16"``) for
                every component; device: ``"cpu"``, ``"cuda"``, ...

        Example::

            >>> editor = Editor.from_pretrained(generator="stabilityai/stable-diffusion-2-inpainting",
            ...                                 localizer="clipseg:CIDAS/clipseg-rd64-refined", torch_dtype="fp16",
            ...                                 device="cuda")  # doctest: +SKIP
            >>> editor(Image.open("cat.jpg"), "replace the cat with a dog", seed=0).image  # doctest: +SKIP
        """
        from regionedit import models as M

        from regionedit.models.loading import resolve

        from .components import parse_dtype, resolve_describer, resolve_generator, resolve_localizer
        from .folder import read_editor_folder

        dtype = parse_dtype(torch_dtype)
        saved, saved_cfg = ({}, None)
        if name_or_path is not None and resolve(name_or_path)[1]:  # a folder written by save_pretrained
            saved, saved_cfg = read_editor_folder(resolve(name_or_path)[0])
        generator = generator if generator is not None else saved.get("generator")
        localizer = localizer if localizer is not None else saved.get("localizer")
        describer = describer if describer is not None else saved.get("describer")
        clip = clip if clip is not None else saved.get("clip")
        instruction_encoder = instruction_encoder if instruction_encoder is not None else saved.get("instruction_encoder")
        cfg = config or saved_cfg or EditorConfig()
        # hub ids download (or come from the cache) as in diffusers / transformers; local_files_only=True or
        # HF_HUB_OFFLINE=1 keeps everything offline
        local_only = bool(load_kwargs.get("local_files_only", False))
        folder = name_or_path if name_or_path is not None else (None if generator is not None else "shapes-64")
        mkw = dict(load_kwargs, clip=clip, instruction_encoder=instruction_encoder)
        if dtype is not None:
            mkw["dtype"] = dtype
        if device is not None:
            mkw["device"] = device
        if folder is not None:
            editor = cls.from_models(M.load(folder, **mkw), cfg, priors, plugin_options)
        else:  # no model folder: the generator's folder lends CLIP / T5 when clip= / instruction_encoder= name them
            models = M.load(generator, **mkw) if isinstance(generator, (str, Path)) else None
            editor = cls(models, config=cfg, priors=[] if priors in (True, False) else list(priors),
                         generator=_Deferred())
        names = {}
        if generator is not None:
            editor.generator, names["generator"] = resolve_generator(generator, dtype, device, cfg.steps, cfg.guidance,
                                                                     local_only)
            editor.domain_guard = None  # the folder's guard reads the folder's own generator
        if localizer is not None:
            editor.localizer, names["localizer"] = resolve_localizer(localizer, editor.models, editor.region_predictor,
                                                                     dtype, device, local_only)
        if describer is not None:
            editor.describer, names["describer"] = resolve_describer(describer, dtype, device, local_only)
            editor._describer_sees_image = _takes(editor.describer, "image")
        if names:
            base = {} if folder is None else {"model": editor.model_id}
            editor.model_id = "; ".join(f"{k}={v}" for k, v in (base | names).items())
        if dtype is not None or device is not None:  # every component, the learned region predictor included
            editor.to(device, dtype)
        editor.component_specs = {k: str(v) for k, v in (("generator", generator), ("localizer", localizer),
                                                           ("describer", describer), ("clip", clip),
                                                           ("instruction_encoder", instruction_encoder))
                                  if isinstance(v, (str, Path))}
        return editor

    @classmethod
    def from_models(cls, models, config: EditorConfig | None = None, priors: bool | list[Prior] = True,
                    plugin_options: dict | None = None) -> "Editor":
        """:meth:`from_pretrained` on loaded :class:`regionedit.models.Models`: the region predictor and the plugin
        of the folder they came from (``models.location``)."""
        from regionedit.core.plugin import folder_plugin, load_plugin
        from regionedit.localize import load_region_predictor

        location = Path(models.location)
        folder = location / "region_predictor"
        pred = load_region_predictor(folder) if (folder / "config.json").exists() else None
        name = folder_plugin(location) if location.is_dir() else None
        describer, found = None, []
        if name is not None:
            plugin = load_plugin(name)
            describer = plugin.describer(models)
            if priors is True:
                found = plugin.priors(models, pred, **(plugin_options or {}))
        chosen = found if priors is True else ([] if priors is False else list(priors))
        return cls(models, pred, describer=describer, config=config, priors=chosen,
                   domain_guard=DomainGuard.from_folder(location) if location.is_dir() else None)

    # -- components ---------------------------------------------------------------------------------
    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | str | None = None) -> "Editor":
        """Move every component (generator, localizer, describer, the folder's models) to ``device`` and/or
        ``dtype`` (``torch.float16``, ``"bf16"``...) in place, as a diffusers pipeline's ``.to``; returns self."""
        from .components import move, parse_dtype

        dtype = parse_dtype(dtype)
        for component in (self.models, self.generator, self.localizer, self.describer):
            move(component, device, dtype)
        return self

    def save_pretrained(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write this editor to ``folder`` so that ``Editor.from_pretrained(folder)`` rebuilds it: the model folder's
        files, a whole-pipeline generator (saved with its own ``save_pretrained``), a region predictor read from
        elsewhere, the :class:`EditorConfig` and the names of the components loaded by id (zero-shot localizers,
        LM describers; referenced, not copied) in ``regionedit.json``. Written to a temporary folder first and
        renamed into place; an existing non-empty ``folder`` is refused unless ``overwrite``."""
        from .folder import write_editor_folder

        return write_editor_folder(self, folder, overwrite)

    @property
    def region_predictor(self):
        """The learned region predictor behind the localizer (None for other localizers or none)."""
        return getattr(self.localizer, "predictor", None)

    @region_predictor.setter
    def region_predictor(self, predictor) -> None:
        """Swap in another region predictor (a checkpoint under evaluation): the localizer reads it, and so do
        the priors that keep its calibrated settings."""
        from regionedit.localize.learned import LearnedLocalizer

        self.localizer = None if predictor is None else LearnedLocalizer(self.models, predictor)
        for p in self.priors:
            if hasattr(p, "region_predictor"):
                p.region_predictor = predictor

    def prior(self, kind: type | str):
        """The first prior of class ``kind`` (or with that ``name``), or None."""
        for p in self.priors:
            if (isinstance(kind, str) and p.name == kind) or (isinstance(kind, type) and isinstance(p, kind)):
                return p
        return None

    def clear_cache(self) -> None:
        """Forget the localizer's cached features of earlier images (timing runs that edit one image repeatedly)."""
        if hasattr(self.localizer, "clear_cache"):
            self.localizer.clear_cache()

    def embed_image(self, image: np.ndarray):
        """The learned localizer's CLIP patch features of an image (cached by content)."""
        return self.localizer.embed_image(image)

    # -- the pipeline ------------------------------------------------------------------------------
    def __call__(self, image: Any, instruction: str | list[str], seed: int | list[int] = 0, mask: Any | None = None,
                 source_caption: str | None = None, steps: int | None = None, guidance: float | None = None, *,
                 num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 callback_on_step_end=None, output_type: str = "np"):
        """Edit ``image`` following ``instruction``: only the region the edit belongs to changes.

        Args:
            image: a path, PIL image or ``(H, W, 3)`` uint8 RGB array (any size); or a list of them (a batch).
            instruction: the edit ("replace the cat with a dog"); or a list (a batch: one per image, or several
                instructions for one image).
            seed: the generator's seed (one for every item of a batch, or a list); ignored when ``generator`` is given.
            mask: optional region to edit (path, PIL or ``(H, W)`` array; white / nonzero = edit) instead of finding it.
            source_caption: optional description of the input image.
            steps / num_inference_steps: denoising steps (default ``config.steps``).
            guidance / guidance_scale: classifier-free guidance scale (default ``config.guidance``).
            generator: a ``torch.Generator`` (or one per batch item) the edit's seed is drawn from, as in diffusers:
                the same generator state gives the same edit.
            callback_on_step_end: ``callback(generator, step_index, timestep, callback_kwargs) -> dict`` called after
                each denoising step (``callback_kwargs["latents"]``; a returned ``"latents"`` replaces them).
            output_type: ``"np"`` (default), ``"pil"`` or ``"pt"``: the type of ``.images``.

        Returns:
            one input: an :class:`~regionedit.core.EditResult` (``.image`` (H, W, 3) uint8, ``.mask``, ``.status``,
            ``.reason``, provenance; ``.images[0]`` in ``output_type``); a batch: an
            :class:`~regionedit.pipeline.EditorOutput` (``.images``, ``.masks``, ``.results``).

        Example::

            >>> editor = Editor.from_pretrained("shapes-64")
            >>> result = editor("scene.png", "remove the red circle", generator=torch.Generator().manual_seed(0))
            >>> result.status, result.mask.sum()                                    # doctest: +SKIP
            >>> out = editor(["a.png", "b.png"], "make the star blue", output_type="pil")
            >>> out.images[0].save("a-blue.png")                                    # doctest: +SKIP
        """
        from .output import check_output_type

        check_output_type(output_type)
        steps = _same("steps", steps, "num_inference_steps", num_inference_steps)
        guidance = _same("guidance", guidance, "guidance_scale", guidance_scale)
        if isinstance(image, (list, tuple)) or isinstance(instruction, (list, tuple)):
            return self._batch(image, instruction, seed, mask, source_caption, steps, guidance, generator,
                               callback_on_step_end, output_type)
        if isinstance(generator, (list, tuple)):
            raise ValueError(f"got a list of {len(generator)} generators for one image; pass one generator")
        if generator is not None:
            seed = _draw_seed(generator)
        if isinstance(seed, (list, tuple)):
            raise ValueError("got a list of seeds for one image; pass one seed (or a batch of images / instructions)")
        result = self._edit(image, instruction, seed, mask, source_caption, steps, guidance, callback_on_step_end)
        result.output_type = output_type
        return result

    def _batch(self, image, instruction, seed, mask, source_caption, steps, guidance, generator, callback,
               output_type: str):
        """Edit each (image, instruction) pair in turn (a single image or instruction is paired with each item of the
        other list); item k is what ``editor(image_k, instruction_k, seed_k)`` gives alone."""
        from .output import EditorOutput, convert_image

        many_images, many_instructions = isinstance(image, (list, tuple)), isinstance(instruction, (list, tuple))
        n = len(image) if many_images else len(instruction)
        if many_images and many_instructions and len(image) != len(instruction):
            raise ValueError(f"got {len(image)} images and {len(instruction)} instructions; pass one instruction per "
                             "image, or one of either for all")
        if n == 0:
            raise ValueError("the batch is empty: pass at least one image and one instruction")
        images = list(image) if many_images else [load_image(image)] * n
        instructions = list(instruction) if many_instructions else [instruction] * n
        seeds = _per_item("seed", seed, n)
        gens = _per_item("generator", generator, n) if generator is not None else [None] * n
        masks = _per_item("mask", mask, n) if isinstance(mask, (list, tuple)) else [mask] * n
        results = []
        for k in range(n):
            s = _draw_seed(gens[k]) if gens[k] is not None else seeds[k]
            results.append(self._edit(images[k], instructions[k], s, masks[k], source_caption, steps, guidance,
                                      callback))
        return EditorOutput([convert_image(r.image, output_type) for r in results], [r.mask for r in results], results)

    def _edit(self, image: Any, instruction: str, seed: int = 0, mask: Any | None = None,
              source_caption: str | None = None, steps: int | None = None, guidance: float | None = None,
              callback=None) -> EditResult:
        t0 = time.perf_counter()
        cfg = self.config
        # 1. check inputs
        image = load_image(image)
        instruction = validate_instruction(instruction)
        method = "mask" if mask is not None else "region"
        user_mask = _as_mask(mask, image.shape[:2]) if mask is not None else None
        names = tuple(p.name for p in self.priors)

        def no_edit(reason: str, target: str = "", local: str = "", prob=None) -> EditResult:
            return EditResult(image, np.zeros(image.shape[:2], bool), prob, "no_edit", reason, instruction, target, local,
                              seed, method, self.model_id, time.perf_counter() - t0, priors=names)

        if self.domain_guard is not None and cfg.domain_guard:
            reason = self.domain_guard.check(self.models.vae, image)
            if reason is not None:
                return no_edit(reason)

        parts = next((s for s in (p.split(instruction) for p in self.priors) if s and len(s) > 1), [instruction])
        if len(parts) > 1:
            if user_mask is not None:
                return no_edit(f"a given mask goes with one edit, and this instruction asks for {len(parts)} "
                               f"({'; '.join(parts)}): give them one at a time")
            return self._in_turn(image, instruction, parts, seed, source_caption, steps, guidance, t0, callback)

        # 2. describe
        desc = (self.describer(instruction, source_caption, image=image) if self._describer_sees_image
                else self.describer(instruction, source_caption))
        if not desc.local_prompt or (desc.intent is None and desc.operation is None):
            return no_edit(desc.error or "could not understand the instruction", desc.target_description)
        if desc.error:
            return no_edit(desc.error, desc.target_description, desc.local_prompt)

        # 3. localize
        prob = footprint = None
        if user_mask is not None:
            region = user_mask
        elif desc.operation == "global":
            region = np.ones(image.shape[:2], bool)  # a global edit (style, weather) changes the whole image
        else:
            footprint, prob = self.find_region(image, instruction, desc, shape=False)
            region = self.shape(footprint, desc, image)
        if _frac(region) < cfg.min_region_frac:
            return no_edit(self.no_region_reason(desc, user_mask is not None), desc.target_description,
                           desc.local_prompt, prob)
        if footprint is not None:
            for p in self.priors:
                reason = p.refuse(image, desc, footprint)
                if reason is not None:
                    return no_edit(reason, desc.target_description, desc.local_prompt, prob)
            for p in self.priors:
                desc = p.complete(desc, image, footprint)

        def edited(out: np.ndarray, local: str, edited_region: np.ndarray, chosen: int = 0,
                   scores: tuple[float, ...] = ()) -> EditResult:
            # 5. (last) every pixel outside the reported mask is the input's, bit for bit
            out = np.where(edited_region[..., None], out, image)
            return EditResult(out, edited_region, prob, "edited", "; ".join(desc.notes) or None, instruction,
                              desc.target_description, local, seed, method, self.model_id,
                              time.perf_counter() - t0, candidate=chosen, candidate_scores=scores, priors=names)

        if footprint is not None:
            def inpaint(img, reg, prompt):
                return self._inpaint(img, reg, prompt, seed, steps, guidance, callback)

            for p in self.priors:
                done = p.direct_edit(image, desc, footprint, region, inpaint)
                if done is not None:
                    return edited(done[0], done[2], done[1])
        states = []
        gen_region = region
        for p in self.priors:
            region, gen_region, state = p.prepare(image, region, desc, footprint, user_mask is not None)
            states.append(state)

        def finish(out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            reg = region
            for p, state in zip(self.priors, states):
                out, reg = p.finish(image, out, reg, desc, footprint, state)
            return out, reg

        scorer = next((p for p in self.priors if p.can_score(desc)), None)
        if cfg.candidates == 1 or scorer is None:
            out, reg = finish(self._inpaint(image, gen_region, desc.local_prompt, seed, steps, guidance, callback))
            return edited(out, desc.local_prompt, reg)
        # 4. best of several draws, as the prior reads them (one batch through the generator)
        seeds = [seed + k * CANDIDATE_STRIDE for k in range(cfg.candidates)]
        drawn = [finish(out) for out in self._inpaint(image, gen_region, desc.local_prompt, seeds, steps, guidance,
                                                      callback)]
        scores = []
        for out, reg in drawn:
            score = scorer.score(out, reg, desc) if reg.any() else None
            scores.append(float("-inf") if score is None else score)  # an empty region reads as nothing
        best = int(np.argmax(scores))
        return edited(drawn[best][0], desc.local_prompt, drawn[best][1], best, tuple(scores))

    def _in_turn(self, image: np.ndarray, instruction: str, parts: list[str], seed: int, source_caption: str | None,
                 steps: int | None, guidance: float | None, t0: float, callback=None) -> EditResult:
        """The edits of one instruction, in order: edit k runs on edit k-1's result with seed ``seed + k`` (and,
        with a source caption, the caption edit k-1 wrote). All or nothing: when one finds nothing to edit,
        the input comes back unchanged with that edit's reason. ``mask`` is the union of the edits' masks."""
        results: list[EditResult] = []
        current, caption = image, source_caption
        names = tuple(p.name for p in self.priors)
        for k, part in enumerate(parts):
            r = self._edit(current, part, seed + k, None, caption, steps, guidance, callback)
            results.append(r)
            if r.status != "edited":
                return EditResult(image, np.zeros(image.shape[:2], bool), None, "no_edit",
                                  f"edit {k + 1} of {len(parts)} ({part!r}): {r.reason}; nothing was changed",
                                  instruction, r.target_description, r.local_prompt, seed, "region",
                                  self.model_id, time.perf_counter() - t0, tuple(results), priors=names)
            current = r.image
            if source_caption is not None:
                caption = r.target_description
        mask = np.logical_or.reduce([r.mask for r in results])
        notes = "; ".join(r.reason for r in results if r.reason) or None
        return EditResult(current, mask, None, "edited", notes, instruction, results[-1].target_description,
                          "; ".join(r.local_prompt for r in results), seed, "region", self.model_id,
                          time.perf_counter() - t0, tuple(results), priors=names)

    def _inpaint(self, image: np.ndarray, region: np.ndarray, prompt: str, seed: int | list[int], steps: int | None,
                 guidance: float | None, callback=None):
        """Stages 4-5: inpaint ``region`` with ``prompt`` on a crop around it at the model's native size and
        paste it back: ``(H, W, 3)`` uint8, bit-identical to ``image`` outside ``region``; for a list of seeds,
        a list of such images, one per seed, drawn in one batch."""
        cfg = self.config
        size = self.generator.native_size
        box = region_crop(region, context=cfg.context, min_size=min(size, *image.shape[:2]))
        crop = crop_resize(image, box, size)
        crop_mask = crop_resize_mask(region, box, size) >= 0.5
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 127.5 - 1
        m = torch.from_numpy(crop_mask.astype(np.float32))[None, None]
        seeds = seed if isinstance(seed, list) else [seed]
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        n = len(seeds)
        extra = {} if callback is None else {"callback_on_step_end": callback}
        patch = self.generator(x.repeat(n, 1, 1, 1), m.repeat(n, 1, 1, 1), [prompt] * n,
                               generator=gens if n > 1 else gens[0], steps=steps, guidance=guidance, **extra)
        outs = []
        for p in patch:
            patch8 = ((p.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
            outs.append(paste_back(image, patch8, box, region, method=cfg.blend))  # blended inside the region only
        return outs if isinstance(seed, list) else outs[0]


def _same(name: str, value, alias: str, alias_value):
    """The value of a setting given by either of its names (ours or diffusers'); both, differing -> ValueError."""
    if alias_value is None:
        return value
    if value is not None and value != alias_value:
        raise ValueError(f"{name}={value!r} and {alias}={alias_value!r} disagree; pass one of them")
    return alias_value


def _draw_seed(generator: torch.Generator) -> int:
    """The edit's seed drawn from a ``torch.Generator`` (advancing it, as a diffusers pipeline consumes its generator)."""
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return int(torch.randint(0, 2**62, (), generator=generator))


def _per_item(name: str, value, n: int) -> list:
    """A per-item list for a batch of ``n``: a list of n as is, one value repeated."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"got {len(value)} {name}s for a batch of {n}; pass one per item (or one for all)")
        return list(value)
    return [value] * n


class _Deferred:
    """Placeholder generator while :meth:`Editor.from_pretrained` resolves the real one."""

    native_size = 0
    model_id = "(unset)"

    def __call__(self, *args, **kwargs):  # pragma: no cover - replaced before use
        raise RuntimeError("generator not resolved")


def _takes(fn, name: str) -> bool:
    """Whether a callable accepts the keyword ``name``."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _as_mask(mask: Any, hw: tuple[int, int]) -> np.ndarray:
    """A user mask (path, PIL, array; white / nonzero = edit) as (H, W) bool at the image size."""
    if isinstance(mask, np.ndarray) and mask.ndim == 2:
        arr = mask
    else:
        arr = load_image(mask).mean(-1)
    if arr.shape != hw:
        raise ValueError(f"mask is {arr.shape[1]}x{arr.shape[0]} but the image is {hw[1]}x{hw[0]}; give a mask of the image's size")
    return arr > (0.5 if arr.dtype == bool or arr.max() <= 1 else 127)
