"""Tiny random chat LMs of real classes, saved as real folders, for the LM describer's tests (as transformers'
own tests do: the real class with a very small config, so the real loading and generation paths run in seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_chat_tokenizer():
    """A byte-level BPE tokenizer (420 tokens, trained offline on the describer's prompt and examples) with ChatML
    special tokens and a chat template, as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from regionedit.describe import OPERATIONS
    from regionedit.describe.lm import EXAMPLES, SYSTEM_PROMPT

    corpus = [SYSTEM_PROMPT] + [json.dumps(a) + " " + i + " " + (c or "") for c, i, a in EXAMPLES]
    corpus += [" ".join(OPERATIONS), "Source caption: unknown\nInstruction: ", "let the cat wear a hat null"]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe.train_from_iterator(corpus * 4, trainers.BpeTrainer(vocab_size=420, special_tokens=specials,
                                                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = CHAT_TEMPLATE
    return tok


def save_tiny_chat_lm(folder: str | Path, seed: int = 0) -> Path:
    """Write a random 2-layer ``Qwen2ForCausalLM`` (hidden 32) and its tokenizer to ``folder`` with
    ``save_pretrained``; loadable by ``LMDescriber.from_pretrained(folder)`` / ``AutoModelForCausalLM``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    tok = tiny_chat_tokenizer()
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
