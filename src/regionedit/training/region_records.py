"""The region trainer's records: TensorBoard (when installed) and the trained
predictor's model card. Split out of :mod:`regionedit.training.region`."""

from __future__ import annotations

from pathlib import Path

def _tensorboard(folder: Path):
    """A TensorBoard writer into ``folder/tensorboard`` when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(Path(folder) / "tensorboard"))


def write_model_card(folder: Path, rec: dict, earlier: dict | None = None) -> str:
    """``folder/README.md`` of a trained predictor: the data, the steps and the measured quality (``rec``: this
    training's record in ``training_state.json``; ``earlier``: the record it continued from). Returns the text."""
    data = rec.get("data") or {}
    q = rec.get("quality") or {}
    lines = ["# region_predictor (seed 001)", "",
             "The learnable edit-region predictor of seed 001 (CLIP patch features fused with instruction features), "
             "trained by `regionedit train region`.", "", "## Training", "",
             f"- steps: {rec.get('steps', '?')}, samples seen: {rec.get('samples_seen', '?')}, "
             f"processes: {rec.get('processes', 1)}, batch per process: {rec.get('batch', '?')}, seed: {rec.get('seed', '?')}",
             f"- CPU minutes (rank 0's step time): {rec.get('cpu_minutes', '?')}"]
    if data:
        desc = ", ".join(f"{k} {data[k]}" for k in ("layout", "schema", "num_samples", "split", "image_size", "mask_threshold")
                         if data.get(k) is not None)
        lines.append(f"- data: `{data.get('location', data.get('source', '?'))}`" + (f" ({desc})" if desc else ""))
    if rec.get("command"):
        lines.append(f"- command: `{rec['command']}`")
    if earlier:
        lines.append(f"- continued from an earlier training: {earlier.get('steps', '?')} steps")
    lines += ["", "## Measured quality", ""]
    if q:
        lines += [f"Measured after {q.get('after_steps', '?')} steps on {q.get('samples', '?')} samples: "
                  f"{q.get('measured_on', '?')}.", "", "| metric | value |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in q.items() if k not in ("measured_on", "samples", "after_steps")]
        lines += ["", "`loss` and its terms are the seed-001 training losses (lower is better); `region_iou` is the "
                  "IoU of the predicted region (threshold 0.5) with the true region of edit pairs, "
                  "`region_iou_whole_image` that of the whole image (the baseline to beat)."]
    else:
        lines.append("Not measured (--eval-n 0).")
    text = "\n".join(lines) + "\n"
    tmp = Path(folder) / "README.md.tmp"
    tmp.write_text(text)
    tmp.replace(Path(folder) / "README.md")
    return text
