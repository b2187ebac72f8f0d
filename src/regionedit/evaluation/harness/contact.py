"""The ``contact_<setting>.html`` sheets: per sampled case, source | ground truth | each method's region and
result, with its status, reason and headline metrics, beside the tables (the PNG version is ``grid_<setting>.png``).
Images are PNG files next to the page (``contact/``), linked relatively, so the folder can be moved or served."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from .grids import _outline
from .records import _load_png, _save_png, output_path, read_records

HEADLINE = ("edit_success", "region_iou", "preservation", "clip_i", "clip_i_src", "l1")  # shown when a record has them


def _overlay(image: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    """The image dimmed outside ``region`` with the region's outline in magenta (the image itself without one)."""
    if region is None or region.shape != image.shape[:2]:
        return image
    out = image.astype(np.float32)
    out[~region] = out[~region] * 0.35 + 255 * 0.65 * 0.3
    out = out.clip(0, 255).astype(np.uint8)
    out[_outline(region)] = (255, 0, 255)
    return out


def _metrics_text(rec: dict | None) -> str:
    if rec is None:
        return "not run"
    parts = [rec.get("status", "?")]
    for k in HEADLINE:
        v = (rec.get("metrics") or {}).get(k)
        if isinstance(v, (int, float)):
            parts.append(f"{k} {v:.3f}")
    if rec.get("reason"):
        parts.append(str(rec["reason"])[:160])
    return " · ".join(parts)


def write_contact_sheets(proto, methods: list[str], out: Path, grid_idx: dict[str, list[int]]) -> list[Path]:
    """One HTML page per setting with the grid's sampled cases; returns the pages written."""
    records = read_records(out)
    pages = []
    for setting, indices in grid_idx.items():
        if not indices:
            continue
        head = "".join(f"<th>{html.escape(m)}: region</th><th>{html.escape(m)}: result</th>" for m in methods)
        rows = []
        for i in indices:
            s = proto.sample(i)
            src_rel = f"contact/{setting}_{i}_source.png"
            _save_png(out / src_rel, s.source)
            cells = [f'<td><img src="{src_rel}" alt="source"></td>']
            if s.target is not None:
                gt_rel = f"contact/{setting}_{i}_target.png"
                _save_png(out / gt_rel, _overlay(s.target, s.mask))
                cells.append(f'<td><img src="{gt_rel}" alt="ground truth"></td>')
            else:
                cells.append("<td>n/a</td>")
            for m in methods:
                p, rp = output_path(out, setting, m, i), output_path(out, setting, m, i, region=True)
                rec = records.get((setting, m, i))
                if not p.exists():
                    cells.append(f'<td colspan="2">{html.escape(_metrics_text(rec))}</td>')
                    continue
                result = _load_png(p)
                region = (_load_png(rp)[..., 0] >= 128) if rp.exists() else None
                reg_rel = f"contact/{setting}_{i}_{m}_region.png"
                _save_png(out / reg_rel, _overlay(result, region))
                res_rel = p.relative_to(out).as_posix()
                cells.append(f'<td><img src="{reg_rel}" alt="{html.escape(m)} region"></td>')
                cells.append(f'<td><img src="{res_rel}" alt="{html.escape(m)} result">'
                             f'<div class="m">{html.escape(_metrics_text(rec))}</div></td>')
            label = html.escape(f"#{i} {s.category or ''}: {s.instruction}")
            rows.append(f'<tr><td class="l">{label}</td>{"".join(cells)}</tr>')
        page = (
            "<!doctype html><meta charset=utf-8>"
            f"<title>regionedit eval: {html.escape(setting)}</title>"
            "<style>body{font:13px sans-serif}td,th{vertical-align:top;padding:3px;border-bottom:1px solid #ddd}"
            "img{width:160px;image-rendering:pixelated}.m{max-width:160px;color:#444}.l{max-width:200px}</style>"
            f"<h1>{html.escape(setting)}</h1><p>source | ground truth (its mask outlined) | for each method: the "
            "region it reported (outlined; outside dimmed) and its result, with status and metrics. Tables: "
            '<a href="results.md">results.md</a>.</p>'
            f"<table><tr><th>case</th><th>source</th><th>ground truth</th>{head}</tr>{''.join(rows)}</table>")
        path = out / f"contact_{setting}.html"
        tmp = path.with_suffix(".html.tmp")
        tmp.write_text(page)
        tmp.replace(path)
        pages.append(path)
    return pages
