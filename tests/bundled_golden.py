"""Golden-value slices of the bundled shapes-64 models (regression check for the shipped weights).

    python tests/bundled_golden.py      # rewrite tests/bundled_golden.json after retraining

Each entry is a small slice of a deterministic forward pass; tests/test_bundled.py recomputes them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

GOLDEN = Path(__file__).with_name("bundled_golden.json")


def compute(m) -> dict[str, list[float]]:
    """Deterministic slices for every component present in the bundled folder."""
    from regionedit.world import render, sample_scene

    out: dict[str, list[float]] = {}
    img = render(sample_scene(np.random.default_rng(123)))
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    root = Path(m.location)
    with torch.no_grad():
        if (root / "clip").exists():
            e = m.clip.get_image_features(pixel_values=x)
            e = getattr(e, "pooler_output", e)
            out["clip_image"] = e[0, :6].tolist()
        if (root / "text_encoder").exists():
            ids = m.tokenizer(["a red star on a white background"], padding="max_length", max_length=m.tokenizer.model_max_length, return_tensors="pt").input_ids
            out["text_encoder"] = m.text_encoder(ids)[0][0, 1, :6].tolist()
        if (root / "vae").exists():
            z = m.vae.encode(x).latent_dist.mode()
            out["vae_latent"] = z[0, :, 8, 8].tolist()
            out["vae_decode"] = m.vae.decode(z).sample[0, :, 32, 30:33].flatten().tolist()
        if (root / "instruction_encoder").exists():
            ids = m.instruction_tokenizer(["remove the red circle"], return_tensors="pt").input_ids
            out["instruction_encoder"] = m.instruction_encoder(ids)[0][0, 1, :6].tolist()
        g = torch.Generator().manual_seed(0)
        lat = torch.randn(1, 4, 16, 16, generator=g)
        cond = torch.randn(1, m.tokenizer.model_max_length, 128, generator=g)
        if (root / "unet").exists():
            out["unet"] = m.unet(lat, 500, cond).sample[0, :, 8, 8].tolist()
        if (root / "unet_inpaint").exists():
            extra = torch.randn(1, 5, 16, 16, generator=g)
            out["unet_inpaint"] = m.unet_inpaint(torch.cat([lat, extra], 1), 500, cond).sample[0, :, 8, 8].tolist()
        if (root / "unet_ip2p").exists():
            from diffusers import UNet2DConditionModel

            ip2p = UNet2DConditionModel.from_pretrained(root / "unet_ip2p", torch_dtype=torch.float32)
            extra = torch.randn(1, 4, 16, 16, generator=g)
            out["unet_ip2p"] = ip2p(torch.cat([lat, extra], 1), 500, cond).sample[0, :, 8, 8].tolist()
        if (root / "region_predictor").exists():
            from regionedit.pipeline import Editor

            ed = Editor(m, _load_predictor(root / "region_predictor"))
            prob = ed.predict_region(img, "remove the red circle")
            out["region_predictor"] = prob[30, 28:34].astype(float).tolist()
        if (root / "dit" / "transformer" / "config.json").exists():
            from diffusers import SD3Transformer2DModel

            tr = SD3Transformer2DModel.from_pretrained(root / "dit" / "transformer", torch_dtype=torch.float32)
            g = torch.Generator().manual_seed(1)  # its own draws: the values above do not move
            enc = torch.randn(1, 49, tr.config.joint_attention_dim, generator=g)
            pooled = torch.randn(1, tr.config.pooled_projection_dim, generator=g)
            out["dit"] = tr(hidden_states=lat, timestep=torch.tensor([500.0]), encoder_hidden_states=enc,
                            pooled_projections=pooled).sample[0, :, 8, 8].tolist()
    return out


def _load_predictor(folder):
    from regionedit.localize import load_region_predictor

    return load_region_predictor(folder)


if __name__ == "__main__":
    from regionedit import models

    vals = compute(models.load("shapes-64"))
    GOLDEN.write_text(json.dumps(vals, indent=1) + "\n")
    print(f"wrote {GOLDEN} ({', '.join(vals)})")
    sys.exit(0)
