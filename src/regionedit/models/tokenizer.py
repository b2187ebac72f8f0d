"""A CLIP-format byte-level BPE tokenizer trained from a text corpus (for miniature models trained from scratch;
real models bring their own tokenizers)."""

from __future__ import annotations

import json

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def build_clip_tokenizer(corpus: list[str], vocab_size: int = 1024, model_max_length: int = 48):
    """Train a byte-level BPE on ``corpus`` and wrap it as a :class:`transformers.CLIPTokenizer`: every word
    of the corpus becomes few tokens, unseen words still encode byte by byte.

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
    tok.train_from_iterator(corpus, trainer=trainer)
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


