"""The ``grid_<setting>.png`` images: source | GT target | each method's output with its region
outlined, one row per sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from .config import EvalConfig
from .records import _load_png, output_path

_CROSS = ndimage.generate_binary_structure(2, 1)  # a pixel and its 4 neighbours


def _outline(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool region -> ``(H, W)`` bool: its pixels with a 4-neighbour outside it."""
    # border_value=False: outside the image counts as outside, so a full-image region outlines the border
    inner = ndimage.binary_erosion(mask, structure=_CROSS, border_value=False)
    return mask & ~inner


def _panel(image: np.ndarray | None, size: int, region: np.ndarray | None = None) -> Image.Image:
    if image is None:
        p = Image.new("RGB", (size, size), (200, 200, 200))
        ImageDraw.Draw(p).text((4, size // 2 - 6), "n/a", fill=(80, 80, 80))
        return p
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BICUBIC
    arr = np.asarray(Image.fromarray(image).resize((nw, nh), resample)).copy()
    if region is not None and region.any():
        r = np.asarray(Image.fromarray(region.astype(np.uint8) * 255).resize((nw, nh), Image.Resampling.NEAREST)) >= 128
        edge = _outline(r)
        # thicker on big panels; np.roll (wrapping), not a dilation, so the grids stay as they were
        edge = edge | np.roll(edge, 1, 0) | np.roll(edge, 1, 1) if size >= 128 else edge
        arr[edge] = (255, 0, 255)
    p = Image.new("RGB", (size, size), (255, 255, 255))
    p.paste(Image.fromarray(arr), ((size - nw) // 2, (size - nh) // 2))
    return p


def make_grid(rows: list[tuple[str, list[tuple[str, np.ndarray | None, np.ndarray | None]]]], path: Path) -> Path:
    """A PNG grid: one row per sample (label, [(column title, image, region)...])."""
    cols = [title for title, _, _ in rows[0][1]]
    biggest = max((im.shape[0] for _, panels in rows for _, im, _ in panels if im is not None), default=64)
    size = 128 if biggest <= 128 else 256
    label_h, pad = 14, 4
    width = pad + len(cols) * (size + pad)
    height = label_h + len(rows) * (size + label_h + pad)
    grid = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for c, title in enumerate(cols):
        draw.text((pad + c * (size + pad), 1), title[: size // 6], fill=(0, 0, 0))
    y = label_h
    for label, panels in rows:
        draw.text((pad, y), label[: width // 6], fill=(60, 60, 60))
        y += label_h
        for c, (_, im, region) in enumerate(panels):
            grid.paste(_panel(im, size, region), (pad + c * (size + pad), y))
        y += size + pad
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, format="PNG")
    return path


def _grid_indices(jobs, settings, k: int) -> dict[str, list[int]]:
    idx: dict[str, list[int]] = {s: [] for s in settings}
    for setting, index, _, reported in jobs:
        if reported and len(idx[setting]) < k:
            idx[setting].append(index)
    return idx


def _write_grids(cfg: EvalConfig, proto, methods: list[str], out: Path, grid_idx: dict[str, list[int]]) -> list[Path]:
    paths = []
    for setting, indices in grid_idx.items():
        rows = []
        for i in indices:
            s = proto.sample(i)
            source = s.source
            if setting == "multi-turn" and s.group is not None:
                first = proto.sessions[s.group][0][1]
                source = proto.sample(first).source
            panels: list[tuple[str, np.ndarray | None, np.ndarray | None]] = [
                ("source", source, None), ("GT target", s.target, s.mask)]
            for m in methods:
                p = output_path(out, setting, m, i)
                rp = output_path(out, setting, m, i, region=True)
                im = _load_png(p) if p.exists() else None
                region = (_load_png(rp)[..., 0] >= 128) if rp.exists() else None
                panels.append((m, im, region))
            label = f"#{i} {s.category or ''}: {s.instruction}"
            rows.append((label, panels))
        if rows:
            paths.append(make_grid(rows, out / f"grid_{setting}.png"))
    return paths
