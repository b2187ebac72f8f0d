"""A CLIP-format BPE tokenizer for the shapes world.

Real models bring their own tokenizers. The bundled miniature models use a real
:class:`transformers.CLIPTokenizer` whose byte-level BPE vocabulary is trained (with the ``tokenizers``
library) on shapes-world captions and instructions, so every world word is one token while unseen
words still encode, letter by letter, instead of failing.
"""

from __future__ import annotations

from regionedit.models.tokenizer import BOS, EOS  # noqa: F401  (re-exported)

# Words users are likely to type beyond what the generator produces (kept as whole tokens too).
EXTRA_WORDS = (
    "upper lower corner middle centre center left right top bottom side image picture photo scene "
    "object shape thing one it them this that here there into onto with for from to of in on at and "
    "an a the please could can would you kindly now instead bit little slightly much more less "
    "colour color colored coloured paint recolor enlarge shrink grow bigger larger smaller tinier "
    "huge tiny big small large gradient background empty no nothing yes red orange yellow green blue "
    "purple white black gray grey beige sky light dark pink brown circle ball dot square box "
    "triangle star diamond rectangle oval"
).split()


def world_corpus(n: int = 4000, seed: int = 1234) -> list[str]:
    """Captions and instructions drawn from the world generator (training text for the BPE)."""
    from regionedit.world import sample_edit

    texts = list(EXTRA_WORDS)
    for i in range(n):
        s = sample_edit(seed, i)
        texts += [s.instruction, s.source_caption, s.target_caption]
    return texts


def build_world_tokenizer(vocab_size: int = 1024, model_max_length: int = 48, corpus: list[str] | None = None):
    """Train a byte-level BPE on world text (:func:`world_corpus` unless ``corpus`` is given) and wrap it as a
    :class:`transformers.CLIPTokenizer` (:func:`regionedit.models.tokenizer.build_clip_tokenizer`)."""
    from regionedit.models.tokenizer import build_clip_tokenizer

    return build_clip_tokenizer(corpus if corpus is not None else world_corpus(), vocab_size, model_max_length)
