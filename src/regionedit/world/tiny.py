"""Tiny randomly initialised models for the shapes world's tests: the general tiny folder
(:mod:`regionedit.models.tiny`) with a world-text tokenizer, naming the ``shapes`` plugin."""

from __future__ import annotations

from pathlib import Path

from regionedit.models.tiny import save_tiny_models as _save
from regionedit.models.tiny import tiny_region_predictor  # noqa: F401  (re-exported for the world's tests)


def tiny_tokenizer():
    """The world tests' tokenizer: a small BPE on world sentences."""
    from regionedit.models.tokenizer import build_clip_tokenizer

    corpus = ["a red circle on a white background", "remove the blue square", "add a green star"] * 3
    return build_clip_tokenizer(corpus, vocab_size=300, model_max_length=16)


def save_tiny_models(folder: str | Path, seed: int = 0, region_bias: float | None = None,
                     presence_bias: float | None = None) -> Path:
    """:func:`regionedit.models.tiny.save_tiny_models` with the world's tokenizer, naming the ``shapes`` plugin."""
    return _save(folder, seed, region_bias, presence_bias, tokenizer=tiny_tokenizer(), plugin="shapes")
