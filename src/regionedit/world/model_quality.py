"""Quality of the bundled world models on held-out world data (the numbers in their model cards).

Held-out data use seeds >= 10_000, never used by training (which draws from generators seeded with
the training seed, default 0). Every function returns a flat dict of named figures.
"""

from __future__ import annotations

import numpy as np
import torch

from regionedit.world import spec
from regionedit.world.language import caption
from regionedit.world.rendering import render
from regionedit.world.scene import Background, Scene, free_pairs, sample_scene

HELD_OUT_SEED = 10_000


def _pixels(images: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


@torch.no_grad()
def _text_embeds(m, texts: list[str]) -> torch.Tensor:
    tok = m.clip_tokenizer(texts, padding="max_length", max_length=m.clip_tokenizer.model_max_length, truncation=True, return_tensors="pt")
    e = m.clip.get_text_features(input_ids=tok.input_ids, attention_mask=tok.attention_mask)
    e = getattr(e, "pooler_output", e)
    return torch.nn.functional.normalize(e, dim=-1)


@torch.no_grad()
def _image_embeds(m, images: list[np.ndarray]) -> torch.Tensor:
    e = m.clip.get_image_features(pixel_values=_pixels(images))
    e = getattr(e, "pooler_output", e)
    return torch.nn.functional.normalize(e, dim=-1)


@torch.no_grad()
def eval_clip(m, groups: int = 4, group_size: int = 64, n_single: int = 200) -> dict:
    """Image->caption top-1 among ``group_size`` held-out pairs; zero-shot colour and shape of one object.

    Zero-shot classes are the 40 (colour, shape) pairs, each text embedding the mean over the six solid
    backgrounds ("a red star on a white background", ...), as CLIP's prompt ensembling.
    """
    rng = np.random.default_rng(HELD_OUT_SEED)
    hits = 0
    for _ in range(groups):
        scenes = [sample_scene(rng) for _ in range(group_size)]
        img = _image_embeds(m, [render(s) for s in scenes])
        txt = _text_embeds(m, [caption(s) for s in scenes])
        hits += int((img @ txt.T).argmax(1).eq(torch.arange(group_size)).sum())
    classes = [(c, s) for c in spec.OBJECT_COLORS for s in spec.SHAPES]
    bgs = list(spec.BACKGROUND_COLORS)
    cls_emb = []
    for c, s in classes:
        e = _text_embeds(m, [f"a {c} {s} on {'an' if b[0] in 'aeiou' else 'a'} {b} background" for b in bgs]).mean(0)
        cls_emb.append(torch.nn.functional.normalize(e, dim=0))
    cls_emb = torch.stack(cls_emb)
    singles = [sample_scene(rng, n_objects=1) for _ in range(n_single)]
    pred = (_image_embeds(m, [render(s) for s in singles]) @ cls_emb.T).argmax(1).tolist()
    color_ok = np.mean([classes[p][0] == s.objects[0].color for p, s in zip(pred, singles)])
    shape_ok = np.mean([classes[p][1] == s.objects[0].shape for p, s in zip(pred, singles)])
    return {
        "image_to_caption_top1": hits / (groups * group_size),
        "zero_shot_color": float(color_ok),
        "zero_shot_shape": float(shape_ok),
        "n_pairs": groups * group_size,
        "n_single": n_single,
    }


@torch.no_grad()
def eval_vae(m, n: int = 256) -> dict:
    """Reconstruction PSNR (dB, on [0, 255]) of held-out scenes, half zoomed in; colour shift per
    solid background colour (mean signed error of background pixels, in levels)."""
    from regionedit.world.windows import zoom_window

    from regionedit.world.measure import find_object

    rng = np.random.default_rng(HELD_OUT_SEED + 1)
    imgs, scenes = [], []
    for i in range(n):
        s = sample_scene(rng)
        imgs.append(render(s, 64, zoom_window(rng, s) if i % 2 else (0, 0, 1, 1)))
        scenes.append(s)
    x = _pixels(imgs)
    vae = m.vae
    y = torch.cat([vae.decode(vae.encode(x[i : i + 64]).latent_dist.mode()).sample for i in range(0, n, 64)])
    y8 = ((y.clamp(-1, 1) + 1) * 127.5).round()
    x8 = (x + 1) * 127.5
    mse = (y8 - x8).pow(2).mean(dim=(1, 2, 3))
    psnr = (10 * torch.log10(255.0**2 / mse.clamp(min=1e-8))).mean().item()
    # objects kept: in the full-frame scenes, each object's colour and shape measured after the round trip
    # (what any latent model can at best draw: the text-to-image measurement is bounded by it)
    kept = {"small": [0, 0], "large": [0, 0]}
    for i in range(0, n, 2):
        out = y8[i].permute(1, 2, 0).to(torch.uint8).numpy()
        for o in scenes[i].objects:
            kept[o.size][0] += bool(find_object(out, o.color, o.shape).found)
            kept[o.size][1] += 1
    shifts = {}
    for b in spec.BACKGROUND_COLORS:
        s = Scene(Background(b), ())
        img = render(s)
        xb = _pixels([img])
        yb = ((vae.decode(vae.encode(xb).latent_dist.mode()).sample.clamp(-1, 1) + 1) * 127.5)
        shifts[b] = float((yb - (xb + 1) * 127.5).mean(dim=(2, 3)).abs().max())
    return {"psnr_db": psnr, "max_background_shift_levels": max(shifts.values()),
            "objects_kept": (kept["small"][0] + kept["large"][0]) / max(1, kept["small"][1] + kept["large"][1]),
            "objects_kept_small": kept["small"][0] / max(1, kept["small"][1]),
            "objects_kept_large": kept["large"][0] / max(1, kept["large"][1]),
            **{f"shift_{k.replace(' ', '_')}": v for k, v in shifts.items()}, "n": n}


@torch.no_grad()
def _score_t2i(generate, n: int, batch: int) -> dict:
    """Text-to-image score of any generator on the first ``n`` held-out captions (1-3 objects each, seeds
    ``HELD_OUT_SEED + 2``): the share of requested objects whose colour and shape are measured in the image
    (``objects_right``), and whose colour is, in any shape (``objects_color_right``).

    ``generate(prompts, generator)`` returns ``(B, 64, 64, 3)`` floats in [0, 1]; each batch of ``batch``
    captions starting at caption ``i`` gets a generator seeded ``HELD_OUT_SEED + i``, so a smaller ``n`` scores
    the first captions of a larger one, with the same generator seeds."""
    from regionedit.world.measure import find_object

    rng = np.random.default_rng(HELD_OUT_SEED + 2)
    scenes = [sample_scene(rng) for _ in range(n)]
    ok = color_ok = total = 0
    for i in range(0, n, batch):
        chunk = scenes[i : i + batch]
        out = generate([caption(s) for s in chunk], torch.Generator().manual_seed(HELD_OUT_SEED + i))
        for img, s in zip(out, chunk):
            img8 = (img * 255).round().astype(np.uint8)
            for o in s.objects:
                total += 1
                ok += bool(find_object(img8, o.color, o.shape).found)
                color_ok += any(find_object(img8, o.color, sh).found for sh in spec.SHAPES)
    return {"objects_right": ok / total, "objects_color_right": color_ok / total, "n_images": n, "n_objects": total}


def eval_t2i(m, n: int = 100, steps: int = 20, guidance: float = 4.0, batch: int = 25) -> dict:
    """Text-to-image UNet through the stock ``StableDiffusionPipeline``: for held-out captions of 1-3 objects,
    the share of requested objects whose colour and shape are measured in the generated image (palette/shape
    measurement, :func:`_score_t2i`)."""
    pipe = m.text_to_image_pipeline()

    def generate(prompts, g):
        return pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, height=64, width=64, generator=g,
                    output_type="np").images

    return {**_score_t2i(generate, n, batch), "steps": steps, "guidance": guidance}


def dit_stock_pipeline(folder):
    """``StableDiffusion3Pipeline.from_pretrained(folder)`` as a user loads the ``dit/`` folder: no T5
    (``text_encoder_3=None, tokenizer_3=None``), every component fp32."""
    from diffusers import StableDiffusion3Pipeline

    pipe = StableDiffusion3Pipeline.from_pretrained(folder, text_encoder_3=None, tokenizer_3=None,
                                                    torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def eval_dit(folder, n: int = 100, steps: int = 20, guidance: float = 4.0, batch: int = 25,
             max_sequence_length: int = 1, n_default: int | None = None) -> dict:
    """The diffusion transformer (a ``StableDiffusion3Pipeline`` folder, ``<model>/dit``) measured as
    :func:`eval_t2i` measures the UNet (same held-out captions, noise seeds and scoring), generating through
    the stock pipeline loaded from ``folder`` (:func:`dit_stock_pipeline`) with ``max_sequence_length`` (the
    length it was trained with, 1). ``objects_right_default_sequence_length``: the same score when the call
    leaves ``max_sequence_length`` at the pipeline's default (256 zero T5 tokens), on the first ``n_default``
    captions (default ``n // 4``)."""
    pipe = dit_stock_pipeline(folder)

    def generator(**kw):
        def generate(prompts, g):
            return pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, height=64, width=64,
                        generator=g, output_type="np", **kw).images

        return generate

    r = _score_t2i(generator(max_sequence_length=max_sequence_length), n, batch)
    n_default = max(1, n // 4) if n_default is None else n_default
    d = _score_t2i(generator(), n_default, batch)  # the pipeline's own default max_sequence_length
    return {**r, "objects_right_default_sequence_length": d["objects_right"],
            "n_images_default_sequence_length": n_default, "steps": steps, "guidance": guidance,
            "max_sequence_length": max_sequence_length}


def _inpaint_cases(rng: np.random.Generator, n: int, zoom: bool):
    """(source, mask, prompt, expected) cases: draw a named object in a region, or restore background."""
    from regionedit.world.windows import region_mask, zoom_window_for

    cases = []
    while len(cases) < n:
        scene = sample_scene(rng)
        o = scene.objects[rng.integers(len(scene.objects))]
        rest = tuple(x for x in scene.objects if x is not o)
        empty = Scene(scene.background, rest)
        window = zoom_window_for(rng, o) if zoom else (0.0, 0.0, 1.0, 1.0)
        mask = region_mask(rng, o.cx, o.cy, o.r, window, "disc")
        if len(cases) % 2 == 0:  # fill with a new named object
            pairs = free_pairs(rest, scene.background)
            c, s = pairs[rng.integers(len(pairs))]
            cases.append((render(scene, 64, window), mask, f"a {c} {s}", ("object", c, s, None)))
        else:  # remove: restore the background
            cases.append((render(scene, 64, window), mask, "background", ("background", None, None, render(empty, 64, window))))
    return cases


@torch.no_grad()
def _inpaint_chunk(pipe, sources, masks, prompts, steps: int, guidance: float, offset: int) -> list[np.ndarray]:
    """One batch through the stock inpainting pipeline at 64 px: ``(64, 64, 3)`` uint8 images (whole frame,
    VAE round trip included); the generator is seeded ``HELD_OUT_SEED + offset``."""
    from PIL import Image

    out = pipe(prompts, image=[Image.fromarray(x) for x in sources],
               mask_image=[Image.fromarray((mk * 255).astype(np.uint8)) for mk in masks],
               num_inference_steps=steps, guidance_scale=guidance, height=64, width=64,
               generator=torch.Generator().manual_seed(HELD_OUT_SEED + offset), output_type="np").images
    return [(img * 255).round().astype(np.uint8) for img in out]


def eval_inpaint(m, n: int = 100, steps: int = 20, guidance: float = 4.0, zoom: bool = True, batch: int = 25) -> dict:
    """Inpainting inside a given mask: "a red star" -> right colour and shape inside the mask;
    "background" -> L1 (in [0, 1]) inside the mask against the true background."""
    from regionedit.world.measure import find_object

    rng = np.random.default_rng(HELD_OUT_SEED + 3 + int(zoom))
    cases = _inpaint_cases(rng, n, zoom)
    pipe = m.inpaint_pipeline()
    obj_ok, obj_n, l1s = 0, 0, []
    for i in range(0, n, batch):
        chunk = cases[i : i + batch]
        out = _inpaint_chunk(pipe, [c[0] for c in chunk], [c[1] for c in chunk], [c[2] for c in chunk], steps, guidance, i)
        for img8, (src, mask, prompt, exp) in zip(out, chunk):
            img8 = np.where(mask[..., None], img8, src)  # judge only the region
            if exp[0] == "object":
                obj_n += 1
                obj_ok += bool(find_object(img8, exp[1], exp[2], region=mask).found)
            else:
                l1s.append(float(np.abs(img8.astype(float) - exp[3].astype(float))[mask].mean() / 255))
    return {"object_right": obj_ok / max(1, obj_n), "background_l1": float(np.mean(l1s)), "n": n,
            "zoomed_crops": zoom, "steps": steps, "guidance": guidance}


@torch.no_grad()
def eval_inpaint_background(m, n: int = 100, steps: int = 20, guidance: float = 4.0, batch: int = 25,
                            tol: float = 0.05) -> dict:
    """Background repaint inside a given mask: every pixel a little away from the objects is masked and
    the prompt names a new background ("a gray background", "a white to sky blue background"). Reports
    the mean L1 (in [0, 1]) inside the mask against the true new background and the share of cases with
    L1 <= ``tol`` (the measure of a background edit's success, given its region)."""
    from regionedit.world.training.world_data import background_sample

    rng = np.random.default_rng(HELD_OUT_SEED + 5)
    cases = []
    while len(cases) < n:
        scene = sample_scene(rng)
        s = background_sample(rng, scene, margin=1)
        if s is not None:
            cases.append((render(scene), *s))
    pipe = m.inpaint_pipeline()
    l1s = []
    for i in range(0, n, batch):
        chunk = cases[i : i + batch]
        out = _inpaint_chunk(pipe, [c[0] for c in chunk], [c[2] for c in chunk], [c[3] for c in chunk], steps, guidance, i)
        for img8, (_, target, mask, _) in zip(out, chunk):
            l1s.append(float(np.abs(img8.astype(float) - target.astype(float))[mask].mean() / 255))
    l1 = np.array(l1s)
    return {"background_repaint_l1": float(l1.mean()), "background_repaint_right": float((l1 <= tol).mean()),
            "n": n, "tol": tol}


@torch.no_grad()
def eval_instruction_encoder(m, n_fit: int = 700, n_test: int = 350) -> dict:
    """How much of an instruction's meaning the frozen features F_ins carry: nearest-centroid accuracy
    (mean-pooled features, centroids fitted on one seed, tested on held-out instructions) for the edit
    operation and for the colour of the named object."""
    from regionedit.world import sample_edit

    def feats(seed: int, n: int):
        samples = [sample_edit(seed, i) for i in range(n)]
        samples = [s for s in samples if s.category != "absent"]
        tok = m.instruction_tokenizer([s.instruction for s in samples], padding=True, return_tensors="pt")
        h = m.instruction_encoder(input_ids=tok.input_ids, attention_mask=tok.attention_mask)[0]
        mask = tok.attention_mask[..., None].float()
        f = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)
        return f, samples

    def accuracy(key):
        f_fit, s_fit = feats(HELD_OUT_SEED + 5, n_fit)
        f_test, s_test = feats(HELD_OUT_SEED + 6, n_test)
        y_fit, y_test = [key(s) for s in s_fit], [key(s) for s in s_test]
        keep_fit = [i for i, y in enumerate(y_fit) if y is not None]
        keep_test = [i for i, y in enumerate(y_test) if y is not None]
        labels = sorted({y_fit[i] for i in keep_fit})
        cent = torch.stack([f_fit[[i for i in keep_fit if y_fit[i] == lab]].mean(0) for lab in labels])
        pred = (f_test[keep_test] @ cent.T).argmax(1).tolist()
        return float(np.mean([labels[p] == y_test[i] for p, i in zip(pred, keep_test)]))

    return {
        "op_nearest_centroid": accuracy(lambda s: s.category),
        "referent_color_nearest_centroid": accuracy(lambda s: (s.edit.get("ref") or {}).get("color")),
        "chance_op": 1 / 6,
    }


def eval_ip2p(m, n: int = 60, steps: int = 20, guidance: float = 4.0) -> dict:
    """The InstructPix2Pix baseline UNet through diffusers' stock pipeline on ``n`` held-out world edits
    (all categories but absent referents): edit success by palette/shape measurement, L1 to the
    ground-truth target and mean |edit - source| outside the ground-truth mask (leakage), on [0, 1]."""
    from regionedit.evaluation.baselines import InstructPix2PixMethod, MethodSettings
    from regionedit.evaluation import metrics as E
    from regionedit.world import sample_edit

    method = InstructPix2PixMethod(m, MethodSettings(steps=steps, guidance=guidance))
    ok, l1, leak = [], [], []
    cats = [c for c in spec.CATEGORIES if c != "absent"]
    for i in range(n):
        s = sample_edit(HELD_OUT_SEED + 7, i, category=cats[i % len(cats)])
        out, _, status = method(s.source, s.instruction, i, s)
        ok.append(bool(E.edit_success_sample(s, out, status=status)))
        l1.append(float(E.l1(out, s.target)))
        leak.append(float(E.leakage(out, s.source, s.mask)))
    return {"edit_success": float(np.mean(ok)), "l1_to_target": float(np.mean(l1)),
            "leakage_outside_gt": float(np.nanmean(leak)), "n": n}
