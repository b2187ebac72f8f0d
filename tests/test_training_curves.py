"""Training writes its loss curves (loss.png) next to log.jsonl at every checkpoint (issue 34 item 4)."""

import json

import torch
from PIL import Image

from regionedit.training.common import Run
from regionedit.training.curves import plot_losses


def test_checkpoint_writes_the_loss_curves(tmp_path):
    run = Run(tmp_path / "run", ckpt_minutes=1)
    for step in range(1, 21):
        run.log({"step": step, "loss": 1.0 / step, "loss_region": 0.5 / step, "lr": 1e-4, "seconds": step})
    with open(run.log_path, "a") as f:
        f.write('{"step": 21, "loss": 0.0')  # a torn last line, as a kill -9 leaves
    run.save({"step": 20, "weights": torch.zeros(2)})
    png = run.dir / "loss.png"
    assert png.is_file() and Image.open(png).format == "PNG" and Image.open(png).width > 400
    assert not list(run.dir.glob("*.tmp"))


def test_no_loss_no_plot(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"step": 1, "lr": 0.1}) + "\n")
    assert plot_losses(log) is None and not (tmp_path / "loss.png").exists()
