"""Frozen feature extraction for region prediction: CLIP patch features F_img, the global image
embedding, text embeddings, and instruction features F_ins (seed 001, section 3.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_image(image, size: int) -> torch.Tensor:
    """An ``(H, W, 3)`` uint8 RGB array (numpy) at ``size`` x ``size``: ``(1, 3, size, size)`` uint8 tensor,
    bilinear with antialiasing, computed on the bytes (a 2048 px image: ~3 ms, against ~50 ms through float);
    the image itself when already that size."""
    import numpy as np

    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def clip_pixels(images: torch.Tensor, size: int, mean, std) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> CLIP input at ``size`` (bilinear, antialiased) normalised with the
    processor's mean/std; differentiable (the CLIP losses backpropagate through it)."""
    x = (images + 1) / 2
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def image_features(clip, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(F_img, e_img)``: patch features (B, N, D) projected into CLIP's joint space and the global
    image embedding (B, D) from the CLS token, both before normalisation."""
    out = clip.vision_model(pixel_values=pixel_values)
    hidden = out.last_hidden_state  # (B, 1 + N, H)
    patches = clip.visual_projection(clip.vision_model.post_layernorm(hidden[:, 1:]))  # (B, N, D)
    global_emb = clip.visual_projection(out.pooler_output)  # (B, D)
    return patches, global_emb


def _clip_text(clip, tokenizer, texts: list[str]):
    """CLIP text-tower outputs of ``texts`` (padded to the tokenizer's max length) and their (B, L) mask."""
    device = next(clip.parameters()).device
    tok = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").to(device)
    return clip.text_model(input_ids=tok.input_ids, attention_mask=tok.attention_mask), tok.attention_mask


def text_embeddings(clip, tokenizer, texts: list[str]) -> torch.Tensor:
    """CLIP text embeddings (B, D) of ``texts``."""
    return clip.text_projection(_clip_text(clip, tokenizer, texts)[0].pooler_output)


def instruction_features(encoder, tokenizer, texts: list[str], max_length: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """``(F_ins, mask)``: instruction-encoder hidden states (B, M, D) and the (B, M) attention mask."""
    device = next(encoder.parameters()).device
    tok = tokenizer(texts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt").to(device)
    hidden = encoder(input_ids=tok.input_ids, attention_mask=tok.attention_mask)[0]
    return hidden, tok.attention_mask


def instruction_text_features(clip, tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(F_txt, mask)``: CLIP text-tower token states of the instructions (B, L, H) and the (B, L) mask,
    the optional second view of the instruction a region predictor with ``text_dim > 0`` reads."""
    out, mask = _clip_text(clip, tokenizer, texts)
    return out.last_hidden_state, mask


def instruction_inputs(models, predictor, texts: list[str]) -> dict[str, torch.Tensor]:
    """Everything a region predictor reads of the instructions, as keyword arguments of its forward:
    ``f_ins``/``ins_mask`` from the instruction encoder, plus ``f_txt``/``txt_mask`` from CLIP's text
    tower when the predictor was built with ``text_dim > 0``."""
    f_ins, ins_mask = instruction_features(models.instruction_encoder, models.instruction_tokenizer, texts)
    out = {"f_ins": f_ins, "ins_mask": ins_mask}
    if predictor.config.text_dim:
        out["f_txt"], out["txt_mask"] = instruction_text_features(models.clip, models.clip_tokenizer, texts)
    return out
