"""On-the-fly training batches drawn from the shapes world (no dataset on disk needed).

Images are returned as float32 tensors ``(B, 3, 64, 64)`` in ``[-1, 1]`` (RGB, image pixels).
All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from regionedit.world import spec
from regionedit.compose.blend import dilate
from regionedit.world.edits import make_edit
from regionedit.world.language import background_phrase, caption, object_phrase
from regionedit.world.rendering import object_coverage, render
from regionedit.world.scene import Scene, sample_scene
from regionedit.world.windows import random_window, region_mask, zoom_window, zoom_window_for  # noqa: F401

SIZE = spec.NATIVE_SIZE


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """``[(H, W, 3) uint8]`` -> ``(B, 3, H, W)`` float32 in ``[-1, 1]``."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def degrade(image: np.ndarray, rng: np.random.Generator, prob: float, jpeg_quality: tuple[int, int] = (60, 95),
            noise_sigma: tuple[float, float] = (1.0, 4.0)) -> np.ndarray:
    """A training image as a user's file may hold it: with probability ``prob``, through a JPEG of a quality
    drawn from ``jpeg_quality`` (half the time) or with Gaussian noise of a sigma drawn from ``noise_sigma``
    (0-255 levels). ``image`` (H, W, 3) uint8 -> a new (H, W, 3) uint8 array (a copy when left as is); the
    renders are otherwise lossless, and the bundled models misread JPEG'd scenes (DEVELOPERS.md, JPEG table)."""
    if prob <= 0 or rng.random() >= prob:
        return image.copy()
    if rng.random() < 0.5:
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1)))
        return np.asarray(Image.open(buf).convert("RGB")).copy()
    sigma = rng.uniform(*noise_sigma)
    return np.clip(np.rint(image + rng.normal(0.0, sigma, image.shape)), 0, 255).astype(np.uint8)


def patch_shape_labels(scene: Scene, grid: int = 16, min_cover: float = 0.3) -> np.ndarray:
    """Dense shape labels on the CLIP patch grid, for the auxiliary training loss only.

    Returns ``(grid, grid)`` int64: ``spec.SHAPES.index(shape)`` of the object covering most of the patch
    (mean coverage >= ``min_cover``), else ``len(spec.SHAPES)`` (background). Row 0 is the top.
    """
    bg = len(spec.SHAPES)
    labels = np.full((grid, grid), bg, dtype=np.int64)
    best = np.full((grid, grid), min_cover)
    k = SIZE // grid
    for o in scene.objects:
        cover = object_coverage(o, SIZE).reshape(grid, k, grid, k).mean(axis=(1, 3))
        take = cover >= best
        labels[take] = spec.SHAPES.index(o.shape)
        best = np.maximum(best, cover)
    return labels


def clip_batch(rng: np.random.Generator, n: int, with_labels: bool = False, degrade_prob: float = 0.0):
    """Images, captions and hard-negative captions for contrastive training.

    A quarter of the scenes have a single object. Each hard negative is the image's caption with one
    object's shape (or, one time in four, its colour) swapped: in-batch negatives almost never differ
    by shape alone, so without them CLIP learns colour but not shape.

    Returns ``(images, texts, negatives)``, plus ``(B, 16, 16)`` int64 :func:`patch_shape_labels` when
    ``with_labels`` (the scenes are the same either way). ``degrade_prob``: share of images passed through
    :func:`degrade` (JPEG or noise, from a generator seeded by ``rng``; 0 draws exactly as before).
    """
    images, texts, negatives, labels = [], [], [], []
    aug = np.random.default_rng(rng.integers(2**63)) if degrade_prob > 0 else None
    for _ in range(n):
        scene = sample_scene(rng, n_objects=1 if rng.random() < 0.25 else None)
        images.append(render(scene) if aug is None else degrade(render(scene), aug, degrade_prob))
        if with_labels:
            labels.append(patch_shape_labels(scene))
        sub = np.random.default_rng(rng.integers(2**63))  # same size words in caption and negative
        texts.append(caption(scene, np.random.default_rng(sub.integers(2**63)), size_words=0.6))
        objs = list(scene.objects)
        k = int(rng.integers(len(objs)))
        o = objs[k]
        if rng.random() < 0.25:
            other = [c for c in spec.OBJECT_COLORS if c != o.color]
            objs[k] = dataclasses.replace(o, color=other[rng.integers(len(other))])
        else:
            other = [s for s in spec.SHAPES if s != o.shape]
            objs[k] = dataclasses.replace(o, shape=other[rng.integers(len(other))])
        neg_scene = Scene(scene.background, tuple(objs))
        negatives.append(caption(neg_scene, np.random.default_rng(sub.integers(2**63)), size_words=0.6))
    if with_labels:
        return to_tensor(images), texts, negatives, torch.from_numpy(np.stack(labels))
    return to_tensor(images), texts, negatives


def vae_batch(rng: np.random.Generator, n: int, zoom_prob: float = 0.4, empty_prob: float = 0.1) -> torch.Tensor:
    """Scenes, some zoomed in (the editor inpaints crops resized to 64 px), some background only
    (flat images are where GroupNorm autoencoders shift colours if they never saw them)."""
    images = []
    for _ in range(n):
        scene = sample_scene(rng)
        if rng.random() < empty_prob:
            scene = Scene(scene.background, ())
        r = rng.random()
        if r < zoom_prob * 0.75:
            window = zoom_window(rng, scene)
        elif r < zoom_prob:
            window = random_window(rng)
        else:
            window = (0.0, 0.0, 1.0, 1.0)
        images.append(render(scene, SIZE, window))
    return to_tensor(images)


def t2i_batch(rng: np.random.Generator, n: int, with_objects: bool = False):
    """Text-to-image pairs (full scenes and their captions): ``(images, captions)``, plus with
    ``with_objects`` a ``(B, 1, 64, 64)`` float mask of object pixels (coverage > 0.02; for loss weighting
    in training only) drawn from the same scenes."""
    images, texts, objects = [], [], []
    for _ in range(n):
        scene = sample_scene(rng)
        images.append(render(scene))
        texts.append(caption(scene, rng, size_words=0.6))
        if with_objects:
            objects.append(sum(object_coverage(o, SIZE) for o in scene.objects) > 0.02)
    if with_objects:
        return to_tensor(images), texts, torch.from_numpy(np.stack(objects)).float()[:, None]
    return to_tensor(images), texts


@dataclasses.dataclass
class InpaintBatch:
    image: torch.Tensor  # (B, 3, 64, 64) in [-1, 1], the target
    mask: torch.Tensor  # (B, 1, 64, 64) in {0, 1}, 1 = region to fill
    prompt: list[str]  # local prompt: "a red star" / "background" / a caption


def background_sample(rng: np.random.Generator, scene: Scene, margin: int | None = None):
    """A background edit as an inpainting target: ``(target, mask, prompt)``.

    The scene is re-rendered on a new background (a solid colour or gradient the world allows with its
    objects, as the ``background`` edit category draws it); the region is every pixel farther than
    ``margin`` pixels (random 0-3 when None) from an object, so the model learns to repaint a large,
    object-shaped hole with the colour or gradient the prompt names ("a white background", "a gray to
    sky blue background") while the objects stay as given. None when the scene allows no new background.
    """
    edit = make_edit(rng, scene, "background")
    if edit is None:
        return None
    objects = np.zeros((SIZE, SIZE), bool)
    for o in scene.objects:
        objects |= object_coverage(o, SIZE) > 0.02
    margin = int(rng.integers(0, 4)) if margin is None else margin
    mask = ~dilate(objects, margin) if margin else ~objects
    return edit.target, mask, background_phrase(edit.target_scene.background)


def tight_mask(rng: np.random.Generator, obj, window=(0.0, 0.0, 1.0, 1.0), max_grow: int = 2) -> np.ndarray:
    """The footprint of ``obj`` (coverage > 0.5) in ``window``, grown by 0..``max_grow`` px: ``(64, 64)`` bool."""
    return dilate(object_coverage(obj, SIZE, window) > 0.5, int(rng.integers(0, max_grow + 1)))


def inpaint_batch(rng: np.random.Generator, n: int, zoom_prob: float = 0.5, background_prob: float = 0.0,
                  tight_prob: float = 0.0) -> InpaintBatch:
    """Inpainting targets: draw a named object inside a region, restore the background there, or (with
    probability ``background_prob``) repaint the whole background (:func:`background_sample`).

    Most object samples ask for an object of the scene ("a red star") inside a region around it; the rest
    (35%) remove it (prompt "background") so the model learns to draw the shape *inside* the region and
    to restore the background around it. The region is a disc or box with a margin around the object or,
    with probability ``tight_prob``, the object's own footprint grown by 0-2 px (:func:`tight_mask`): the
    region a recolour or a removal of a found object gets, which the model must fill edge to edge.
    """
    images, masks, prompts = [], [], []
    while len(images) < n:
        scene = sample_scene(rng)
        if background_prob and rng.random() < background_prob:
            sample = background_sample(rng, scene)
            if sample is not None:
                images.append(sample[0])
                masks.append(sample[1])
                prompts.append(sample[2])
            continue
        o = scene.objects[rng.integers(len(scene.objects))]
        remove = rng.random() < 0.35
        target_scene = Scene(scene.background, tuple(x for x in scene.objects if x is not o)) if remove else scene
        window = zoom_window_for(rng, o) if rng.random() < zoom_prob else (0.0, 0.0, 1.0, 1.0)
        images.append(render(target_scene, SIZE, window))
        masks.append(tight_mask(rng, o, window) if tight_prob and rng.random() < tight_prob else region_mask(rng, o.cx, o.cy, o.r, window))
        if remove:
            prompts.append("background")
        else:
            r = rng.random()
            prompts.append(object_phrase(o, with_size=r < 0.3) if r < 0.85 else caption(target_scene, rng, 0.6))
    mask = torch.from_numpy(np.stack(masks)).float()[:, None]
    return InpaintBatch(to_tensor(images), mask, prompts)


__all__ = ["clip_batch", "vae_batch", "t2i_batch", "inpaint_batch", "tight_mask", "background_sample", "InpaintBatch", "to_tensor", "object_coverage"]
