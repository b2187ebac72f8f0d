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


VLM_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def save_tiny_vlm(folder: str | Path, seed: int = 0, image_size: int = 56) -> Path:
    """Write a random ``LlavaForConditionalGeneration`` to ``folder`` with ``save_pretrained``: a 1-layer CLIP vision
    tower (hidden 32, patch 14, ``image_size`` pixels square, so ``(image_size // 14) ** 2`` image tokens), a
    2-layer Qwen2 language model (hidden 32) and a ``LlavaProcessor`` (the PIL image processor: resize to the
    shortest edge ``image_size`` and centre crop, no torchvision; :func:`tiny_chat_tokenizer` plus the ``<image>``
    token; a ChatML template that puts ``<image>`` where the message has ``{"type": "image"}``). Loadable offline by
    ``AutoProcessor`` / ``AutoModelForImageTextToText`` and ``LMDescriber.from_pretrained(folder)``."""
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor, Qwen2Config
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

    folder = Path(folder)
    patch = 14
    if image_size < patch or image_size % patch:
        raise ValueError(f"image_size must be a positive multiple of {patch}, got {image_size}")
    tok = tiny_chat_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tok.chat_template = VLM_CHAT_TEMPLATE
    image_token_id = tok.convert_tokens_to_ids("<image>")
    images = LlavaImageProcessorPil(size={"shortest_edge": image_size},
                                    crop_size={"height": image_size, "width": image_size})
    # CLIP adds a CLS token (num_additional_image_tokens=1) that the "default" strategy drops again
    processor = LlavaProcessor(image_processor=images, tokenizer=tok, patch_size=patch, image_token="<image>",
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=VLM_CHAT_TEMPLATE)
    text = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=image_size, patch_size=patch, projection_dim=32)
    cfg = LlavaConfig(text_config=text, vision_config=vision, image_token_id=image_token_id, vision_feature_layer=-1,
                      vision_feature_select_strategy="default", image_seq_length=(image_size // patch) ** 2,
                      tie_word_embeddings=True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(cfg)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
