"""LMDescriber with a VLM: a tiny random LLaVA (CLIP tower + Qwen2 LM, regionedit.models.tiny_describers.save_tiny_vlm)
loaded by folder through AutoProcessor / AutoModelForImageTextToText, shown scikit-image's astronaut and chelsea in
free and constrained mode; and a tiny random Qwen2-VL (3-D M-RoPE positions, the case where the constrained mode's
cached steps need care) with its real PIL image processor behind a small stand-in processor (the real
Qwen2VLProcessor needs torchvision for its video processor)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from regionedit.describe import OPERATIONS, Description, LMDescriber
from regionedit.describe.lm import _Decoder, validate_answer

INSTRUCTION = "let the cat wear a hat"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread while these tiny models run: on shared cores, waking a second thread for each 32-wide
    matmul costs far more than the matmul (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    from regionedit.models.tiny_describers import save_tiny_vlm

    return save_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm"))


@pytest.fixture(scope="module")
def vlm(tiny_vlm):
    return LMDescriber.from_pretrained(tiny_vlm, max_new_tokens=4)


@pytest.fixture(scope="module")
def images():
    return {"astronaut": data.astronaut(), "chelsea": data.chelsea()}  # 512x512 and 300x451


class _VisionCalls:
    """Forward hook on a model's vision tower: the pixel values it was given, one entry per call."""

    def __init__(self, model):
        tower = next(m for name, m in model.named_modules() if name.endswith(("vision_tower", "visual")))
        self.calls: list[torch.Tensor] = []
        self.handle = tower.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, out):
        px = args[0] if args else kwargs.get("pixel_values", kwargs.get("hidden_states"))
        self.calls.append(px.detach().clone())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _full_score(d: LMDescriber, prefix: str, text: str, image) -> float:
    """Log-likelihood of ``text`` after ``prefix`` from one uncached forward over both (the reference for the
    constrained mode's cached scoring)."""
    enc = d._encode(prefix, image)
    ids = torch.tensor([d.tokenizer(text, add_special_tokens=False)["input_ids"]])
    n = ids.shape[1]
    for key, fill in (("input_ids", ids), ("attention_mask", torch.ones_like(ids)),
                      ("mm_token_type_ids", torch.zeros_like(ids))):
        if key in enc:
            enc[key] = torch.cat([enc[key], fill.to(enc[key].dtype)], 1)
    with torch.inference_mode():
        lp = torch.log_softmax(d.model(**enc).logits[0].float(), -1)
    full = enc["input_ids"][0]
    length = full.shape[0]
    return sum(lp[length - n - 1 + j, full[length - n + j]].item() for j in range(n))


def _check_schema(d: LMDescriber, out: Description) -> dict:
    assert isinstance(out, Description) and out.operation in OPERATIONS
    fields, problem = validate_answer(json.loads(d.last_outputs[-1]))
    assert problem is None and fields["operation"] == out.operation
    return fields


# -- the tiny LLaVA folder ---------------------------------------------------------------------------------------
def test_the_folder_is_recognised_as_a_vlm(vlm):
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    assert vlm.is_vlm and vlm.constrained  # under a billion parameters: constrained by default
    assert isinstance(vlm.model, LlavaForConditionalGeneration) and isinstance(vlm.processor, LlavaProcessor)
    assert vlm.tokenizer is vlm.processor.tokenizer
    with_image = vlm.prompt(INSTRUCTION, image=data.chelsea())
    assert with_image.count("<image>") == 1 and with_image.index("<image>") > with_image.rindex("<|im_start|>user")
    assert "<image>" not in vlm.prompt(INSTRUCTION)


def test_constrained_mode_sees_the_image_of_any_size(vlm, images):
    scores, lengths = {}, set()
    with _VisionCalls(vlm.model) as vision:
        seen = []
        pre = vlm.model.register_forward_pre_hook(
            lambda m, a, kw: seen.append(kw.get("pixel_values") is not None), with_kwargs=True)
        try:
            for name, img in images.items():
                vision.calls.clear()
                seen.clear()
                out = vlm(INSTRUCTION, source_caption="a photo", image=img)
                _check_schema(vlm, out)
                assert out.target_description
                # the image is encoded once, with the prompt; the decoding steps after it reuse the cache
                assert len(vision.calls) == 1 and seen[0] and not any(seen[1:]) and len(seen) > 10
                assert tuple(vision.calls[0].shape) == (1, 3, 56, 56)  # resized by the processor
                scores[name] = dict(vlm.last_scores)
                lengths.add(vlm._encode(vlm.prompt(INSTRUCTION, "a photo", img), img)["input_ids"].shape[1])
        finally:
            pre.remove()
    assert set(scores["astronaut"]) == set(OPERATIONS)
    assert len(lengths) == 1  # the same number of image tokens for 512x512 and 300x451
    assert any(abs(scores["astronaut"][op] - scores["chelsea"][op]) > 1e-6 for op in OPERATIONS)


def test_cached_scores_match_a_full_forward(vlm, images):
    img = images["chelsea"]
    prefix = vlm.prompt(INSTRUCTION, None, img) + '{"operation": "'
    state = _Decoder(vlm, prefix, img)
    for op in ("remove", "background", "attribute"):
        assert state.score(op + '"') == pytest.approx(_full_score(vlm, prefix, op + '"', img), abs=1e-4)


def test_without_an_image_the_vlm_is_a_text_lm(vlm, tiny_vlm, images):
    with _VisionCalls(vlm.model) as vision:
        vlm(INSTRUCTION, image=images["astronaut"])
        vision.calls.clear()
        out = vlm(INSTRUCTION)
        assert not vision.calls
    _check_schema(vlm, out)
    fresh = LMDescriber.from_pretrained(tiny_vlm, max_new_tokens=4)
    again = fresh(INSTRUCTION)
    assert fresh.last_outputs == vlm.last_outputs and fresh.last_scores == vlm.last_scores
    assert again.operation == out.operation


def test_image_formats(vlm):
    rgb = data.chelsea()
    ref = vlm._encode("<image>\nx", rgb)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    for img in (Image.fromarray(rgb), rgb.mean(-1).astype(np.uint8), rgba, rgb / 255.0, rgb[..., :1]):
        enc = vlm._encode("<image>\nx", img)
        assert torch.equal(enc["input_ids"], ref["input_ids"])
        assert enc["pixel_values"].shape == ref["pixel_values"].shape
    assert torch.allclose(vlm._encode("<image>\nx", rgb / 255.0)["pixel_values"], ref["pixel_values"], atol=1e-5)
    with pytest.raises(ValueError, match="image must be"):
        vlm._encode("<image>\nx", np.zeros((4, 4, 5), np.uint8))


def test_free_mode_with_a_random_vlm_reports_an_error_not_an_exception(tiny_vlm, images):
    d = LMDescriber.from_pretrained(tiny_vlm, max_new_tokens=6, retries=1, constrained=False)
    with _VisionCalls(d.model) as vision:
        out = d(INSTRUCTION, image=images["astronaut"])
        assert len(vision.calls) == 2  # each attempt shows the model the image
    assert isinstance(out, Description) and out.error and "could not be read after 2 attempt" in out.error
    assert out.operation is None and d.last_attempts == 2 and len(d.last_outputs) == 2
    first = list(d.last_outputs)
    d(INSTRUCTION, image=images["astronaut"])
    assert d.last_outputs == first  # greedy, then seeded sampling
    assert d(INSTRUCTION).error  # and without an image


def test_bf16_load_works(tiny_vlm, images):
    d = LMDescriber.from_pretrained(tiny_vlm, torch_dtype="bfloat16", max_new_tokens=3)
    assert next(d.model.parameters()).dtype == torch.bfloat16 and d.is_vlm
    with _VisionCalls(d.model) as vision:
        out = d("make the car red", image=images["chelsea"])
        assert vision.calls and vision.calls[0].dtype == torch.bfloat16
    _check_schema(d, out)


# -- Qwen2-VL: 3-D (M-RoPE) positions and the offset the model keeps between calls ----------------------------------
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class _QwenImageProcessor:
    """Qwen2VLProcessor's image path: the real PIL image processor, ``<|image_pad|>`` repeated once per merged
    patch, and ``mm_token_type_ids``."""

    image_token = "<|image_pad|>"

    def __init__(self, tokenizer):
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        self.tokenizer = tokenizer
        self.image_processor = Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=56 * 56)

    def __call__(self, text, images, return_tensors="pt"):
        from transformers import BatchFeature

        pix = self.image_processor(images=images, return_tensors=return_tensors)
        n = int(pix["image_grid_thw"][0].prod()) // self.image_processor.merge_size ** 2
        enc = self.tokenizer([text[0].replace(self.image_token, self.image_token * n)], return_tensors=return_tensors,
                             add_special_tokens=False)
        mm = (enc["input_ids"] == self.tokenizer.convert_tokens_to_ids(self.image_token)).int()
        return BatchFeature({**enc, **pix, "mm_token_type_ids": mm})


@pytest.fixture(scope="module")
def qwen_vl():
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from regionedit.models.tiny_describers import tiny_chat_tokenizer

    tok = tiny_chat_tokenizer()
    names = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tok.add_special_tokens({"additional_special_tokens": names})
    tok.chat_template = QWEN_TEMPLATE
    ids = tok.convert_tokens_to_ids(names)
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0},
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        vision_start_token_id=ids[0], vision_end_token_id=ids[1], image_token_id=ids[2], video_token_id=ids[3],
        tie_word_embeddings=True)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Qwen2VLForConditionalGeneration(cfg).eval().requires_grad_(False)
    return model, _QwenImageProcessor(tok)


def test_qwen2_vl_constrained_decoding_with_3d_positions(qwen_vl, images):
    model, processor = qwen_vl
    d = LMDescriber(model, processor, is_vlm=True, constrained=True, max_new_tokens=3)
    scores = {}
    for name, img in images.items():
        out = d(INSTRUCTION, image=img)  # the cached steps used to get full-length positions here and fail
        _check_schema(d, out)
        scores[name] = dict(d.last_scores)
    assert any(abs(scores["astronaut"][op] - scores["chelsea"][op]) > 1e-6 for op in OPERATIONS)
    img = images["astronaut"]
    prefix = d.prompt(INSTRUCTION, None, img) + '{"operation": "'
    state = _Decoder(d, prefix, img)
    for op in ("remove", "recolor"):
        assert state.score(op + '"') == pytest.approx(_full_score(d, prefix, op + '"', img), abs=1e-4)
    # after an image, a call without one must not keep the image's position offset
    d(INSTRUCTION)
    after_image = (list(d.last_outputs), dict(d.last_scores))
    model.model.rope_deltas = None
    d(INSTRUCTION)
    assert (d.last_outputs, d.last_scores) == after_image


def test_qwen2_vl_free_mode_never_raises(qwen_vl, images):
    model, processor = qwen_vl
    d = LMDescriber(model, processor, is_vlm=True, constrained=False, max_new_tokens=4, retries=1)
    out = d(INSTRUCTION, image=images["chelsea"])
    assert isinstance(out, Description) and out.error and "generation failed" not in out.error
    assert "generation failed" not in d(INSTRUCTION).error
