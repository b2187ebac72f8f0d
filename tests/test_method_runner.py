"""The seed methods' shared runner (regionedit.training.method_runner.train_method) on a toy method: the collate
hook, loss keyword arguments from the (resumed) train config, counters and run info saved and restored, a resume
check that refuses another run, and the export's record."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from regionedit.training.method_runner import EndlessSamples, RunOptions, train_method


@dataclasses.dataclass
class ToyConfig:
    width: int = 3

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ToyConfig":
        return cls(**d)


@dataclasses.dataclass
class ToyTrainConfig:
    batch_size: int = 2
    lr: float = 1e-2
    weight_decay: float = 0.0
    seed: int = 0
    scale: float = 1.0


class Toy:
    """y = w . x fitted to targets; a sample is (x list, target float)."""

    native_size = 8

    def __init__(self, cfg: ToyConfig):
        self.config = cfg
        self.net = nn.Linear(cfg.width, 1, bias=False)
        with torch.no_grad():
            self.net.weight.zero_()
        self.counters = {"seen": 0}
        self.scales: list[float] = []
        self.saved = None

    def trainable_parameters(self):
        return list(self.net.parameters())

    def train(self):
        self.net.train()

    def eval(self):
        self.net.eval()

    def collate(self, samples):
        self.counters["seen"] += len(samples)
        return (torch.tensor([s[0] for s in samples]), torch.tensor([s[1] for s in samples]))

    def training_loss(self, x, y, generator, scale=1.0):
        self.scales.append(scale)
        loss = scale * ((self.net(x).squeeze(1) - y) ** 2).mean()
        return loss, {"loss": float(loss.detach())}

    def training_record(self):
        return {"seen_by_collate": self.counters["seen"]}

    def save_pretrained(self, folder, training=None, dtype=torch.float32):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "record.json").write_text(json.dumps(training))
        self.saved = training
        return folder


DATA = [([1.0, 0.0, 0.0], 1.0), ([0.0, 1.0, 0.0], 2.0), ([0.0, 0.0, 1.0], 3.0)]


def _run(out, steps, tc=None, cfg=None, **kw):
    opts = RunOptions(out=out, max_steps=steps, minutes=5, log_every=1)
    return train_method(Toy, ToyConfig, cfg or ToyConfig(), tc or ToyTrainConfig(), DATA, opts, "toy objective",
                        loss_kwargs=lambda t: {"scale": t.scale}, **kw)


def test_collate_hook_loss_kwargs_and_record(tmp_path):
    res = _run(tmp_path / "a", 40, ToyTrainConfig(lr=0.2, scale=2.0))
    m = res["method"]
    assert m.scales and set(m.scales) == {2.0}
    w = m.net.weight.detach().squeeze()
    assert torch.allclose(w, torch.tensor([1.0, 2.0, 3.0]), atol=0.3), w  # it learned through the collate hook
    rec = json.loads((res["export"] / "record.json").read_text())
    assert rec["steps"] == 40 and rec["samples_seen"] == 80 and rec["objective"] == "toy objective"
    assert rec["seen_by_collate"] == 80


def test_resume_restores_counters_config_and_is_bit_equal(tmp_path):
    straight = _run(tmp_path / "a", 5, ToyTrainConfig(scale=0.5))
    _run(tmp_path / "b", 3, ToyTrainConfig(scale=0.5), run_info={"base": "x"})
    seen = {}
    resumed = _run(tmp_path / "b", 5, ToyTrainConfig(scale=9.0), cfg=ToyConfig(width=3),
                   check_resume=lambda saved: seen.update(saved))
    assert seen["step"] == 3 and seen["run_info"] == {"base": "x"} and seen["train_config"]["scale"] == 0.5
    assert set(resumed["method"].scales) == {0.5}  # the saved train config's loss kwargs, not the caller's
    assert resumed["method"].counters["seen"] == 10 and resumed["steps_this_run"] == 2
    assert torch.equal(straight["method"].net.weight, resumed["method"].net.weight)


def test_resume_check_can_refuse(tmp_path):
    _run(tmp_path / "c", 1, run_info={"base": "x"})

    def refuse(saved):
        if saved["run_info"]["base"] != "y":
            raise ValueError("trained on another base")

    with pytest.raises(ValueError, match="another base"):
        _run(tmp_path / "c", 2, check_resume=refuse)


def test_endless_samples_restarts_skips_and_names_one_shot_iterators():
    s = EndlessSamples([1, 2, 3], skip=2)
    assert s.take(4) == [3, 1, 2, 3] and s.used == 6
    with pytest.raises(ValueError, match="one-shot"):
        EndlessSamples(iter([1])).take(2)
    with pytest.raises(ValueError, match="empty"):
        EndlessSamples([]).take(1)
