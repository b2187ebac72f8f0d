"""Loss curves of a training run as a PNG next to its ``log.jsonl`` (written at every checkpoint).

Every numeric field of the log records whose name contains "loss" is drawn against ``step``, one panel per field
(log-scaled when positive), from matplotlib's object API (no pyplot: no global state)."""

from __future__ import annotations

import json
from pathlib import Path


def read_log(path: str | Path) -> list[dict]:
    """The records of a ``log.jsonl`` (a torn last line, from a killed run, is skipped)."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def plot_losses(log_path: str | Path, png_path: str | Path | None = None, title: str | None = None,
                keys: tuple[str, ...] | None = None) -> Path | None:
    """Draw the loss fields of ``log_path`` (every numeric field whose name has "loss", or ``keys``) against
    ``step`` into ``png_path`` (default: ``loss.png`` beside the log), written atomically; returns the path, or
    None when the log has no loss values yet."""
    from matplotlib.figure import Figure

    log_path = Path(log_path)
    records = [r for r in read_log(log_path) if isinstance(r.get("step"), (int, float))]
    keys = sorted({k for r in records for k, v in r.items()
                   if (k in keys if keys is not None else "loss" in k)
                   and isinstance(v, (int, float)) and not isinstance(v, bool)})
    if not keys:
        return None
    png_path = Path(png_path) if png_path is not None else log_path.with_name("loss.png")
    fig = Figure(figsize=(4.5 * min(len(keys), 3), 3.2 * ((len(keys) + 2) // 3)), dpi=100)
    axes = fig.subplots((len(keys) + 2) // 3, min(len(keys), 3), squeeze=False).ravel()
    for ax, key in zip(axes, keys):
        pts = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1)
        if all(p[1] > 0 for p in pts):
            ax.set_yscale("log")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(title or str(log_path.parent.name), fontsize=10)
    fig.tight_layout()
    tmp = png_path.with_name(png_path.name + ".tmp")
    fig.savefig(tmp, format="png")
    tmp.replace(png_path)
    return png_path
