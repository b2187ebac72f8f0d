"""A CLIP-format BPE tokenizer for the shapes world.

Real models bring their own tokenizers. The bundled miniature models use a real
:class:`transformers.CLIPTokenizer` whose byte-level BPE vocabulary is trained (with the ``tokenizers``
library) on shapes-world captions and instructions, so every world word is one token while unseen
words still encode, letter by letter, instead of failing.
"""

from __future__ import annotations

import json


BOS, EOS = "<|startoftext|>", "<|endoftext|>"

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
    """Train a byte-level BPE on world text and wrap it as a :class:`transformers.CLIPTokenizer`.

    The token ids of ``<|startoftext|>`` / ``<|endoftext|>`` are *not* 2 (transformers' CLIP text
    model falls back to argmax pooling when ``eos_token_id == 2``).
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    tok = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=sorted(alphabet),
        end_of_word_suffix="</w>",
        special_tokens=[],
    )
    texts = corpus if corpus is not None else world_corpus()
    tok.train_from_iterator(texts, trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    # every single byte, bare and as a word end, so any text encodes
    for ch in sorted(alphabet):
        for t in (ch, ch + "</w>"):
            if t not in vocab:
                vocab[t] = len(vocab)
    vocab = {t: i for i, t in enumerate(sorted(vocab, key=vocab.get))}
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
    assert tokenizer.eos_token_id != 2 and tokenizer.bos_token_id != 2
    return tokenizer


