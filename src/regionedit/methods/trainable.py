"""What the seed methods with trained modules over a frozen base share (:class:`~.adaptedit.AdaptEdit`,
:class:`~.fireedit.FireEdit`): everything that trains sits in one ``nn.ModuleDict`` ``net``; the folder format is
``<weights>.safetensors`` (``net``'s state, float32) + ``config.json`` (class, seed paper, base model, config,
trainable count, training record, measured quality) + a model card ``README.md``, written atomically; nothing is
pickled.

A subclass sets ``WEIGHTS_NAME``, ``SEED_PAPER``, ``CONFIG_CLASS``, ``INFERENCE_SETTINGS`` (the config fields
:meth:`from_pretrained` may override) and ``TRAIN_COMMAND``, and implements ``_model_card(training, quality)`` and
``_from_saved(base, config, **kw)`` (build the method on ``base`` with ``config``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from torch import nn

FORMAT_VERSION = 1


class DictConfig:
    """``to_dict`` / ``from_dict`` for a method's dataclass config (``config.json``); unknown fields are an error."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}")
        return cls(**d)


class TrainableMethod:
    WEIGHTS_NAME: str
    SEED_PAPER: str
    CONFIG_CLASS: type
    INFERENCE_SETTINGS: frozenset[str] = frozenset()
    TRAIN_COMMAND: str
    net: nn.ModuleDict
    base_model: str
    config: object

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Everything that trains (``net``; never the frozen base)."""
        return [p for p in self.net.parameters() if p.requires_grad]

    def train(self, mode: bool = True):
        self.net.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters())

    def _model_card(self, training: dict | None, quality: dict | None) -> str:
        raise NotImplementedError

    def save_pretrained(self, folder: str | Path, training: dict | None = None, quality: dict | None = None,
                        dtype: torch.dtype = torch.float32) -> Path:
        """Write the weights (``net``, in ``dtype``: float32, or float16 for a bundle), ``config.json`` and the model
        card into ``folder``. The frozen base is not copied; ``config.json`` names it. Loading casts back to the
        method's float32 parameters."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.net.state_dict().items()}
        tmp = folder / (self.WEIGHTS_NAME + ".tmp")
        save_file(tensors, str(tmp), metadata={"format": "pt", "method": type(self).__name__})
        os.replace(tmp, folder / self.WEIGHTS_NAME)
        meta = {"_class_name": type(self).__name__, "format_version": FORMAT_VERSION, "seed_paper": self.SEED_PAPER,
                "base_model": self.base_model, "config": self.config.to_dict(),
                "trainable_parameters": self.num_trainable(), "training": training, "quality": quality}
        atomic_write(folder / "config.json", json.dumps(meta, indent=2) + "\n")
        atomic_write(folder / "README.md", self._model_card(training, quality))
        return folder

    @classmethod
    def _from_saved(cls, base, config, **kw):
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, folder: str | Path, base=None, overrides: dict | None = None, **kw):
        """Load a folder written by :meth:`save_pretrained` onto ``base`` (default: the ``base_model`` its
        ``config.json`` names); ``overrides``: inference settings to change (``INFERENCE_SETTINGS``; the
        architecture is fixed by the weights); ``kw`` go to the subclass's constructor."""
        from safetensors.torch import load_file

        folder, name = Path(folder), cls.__name__
        if not (folder / "config.json").exists() or not (folder / cls.WEIGHTS_NAME).exists():
            raise FileNotFoundError(f"{folder} is not a{'n' if name[0] in 'AEIOU' else ''} {name} folder (needs "
                                    f"config.json and {cls.WEIGHTS_NAME}); write one with {name}.save_pretrained or "
                                    f"`{cls.TRAIN_COMMAND}`")
        meta = json.loads((folder / "config.json").read_text())
        if meta.get("_class_name") != name:
            raise ValueError(f"{folder / 'config.json'} describes a {meta.get('_class_name')!r}, not {name}")
        overrides = dict(overrides or {})
        if set(overrides) - cls.INFERENCE_SETTINGS:
            raise ValueError(f"{sorted(set(overrides) - cls.INFERENCE_SETTINGS)} are fixed by the saved weights; only "
                             f"{sorted(cls.INFERENCE_SETTINGS)} can be overridden")
        config = cls.CONFIG_CLASS.from_dict({**meta["config"], **overrides})
        method = cls._from_saved(base if base is not None else meta["base_model"], config, **kw)
        missing, unexpected = method.net.load_state_dict(load_file(str(folder / cls.WEIGHTS_NAME)), strict=False)
        if missing or unexpected:
            raise ValueError(f"{folder / cls.WEIGHTS_NAME} does not fit this base (missing {list(missing)[:4]}, "
                             f"unexpected {list(unexpected)[:4]}); it was trained on another base than "
                             f"{method.base_model}")
        return method


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def frozen_unet_subfolder(folder: str | Path) -> str | None:
    """The frozen UNet subfolder (of the base model folder) that a trained method's weights folder names in its
    ``config.json``: ``unet_subfolder`` at the top (Region in Context) or under ``"config"`` (FireEdit); None when
    the config is missing, unreadable or names none."""
    try:
        cfg = json.loads((Path(folder) / "config.json").read_text())
        sub = cfg.get("unet_subfolder") or (cfg.get("config") or {}).get("unet_subfolder")
    except (OSError, ValueError, AttributeError):
        return None
    return sub if isinstance(sub, str) and sub else None
