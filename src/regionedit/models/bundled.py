"""Where the bundled "shapes-64" models live and how their folder is laid out.

The folder is a diffusers Stable Diffusion folder (``model_index.json``, ``scheduler``, ``tokenizer``,
``text_encoder``, ``vae``, ``unet``) plus our extra components: ``unet_inpaint`` (9 input channels),
``clip`` (full CLIPModel for scoring and region prediction) and ``instruction_encoder`` (T5 encoder).
"""

from __future__ import annotations

from pathlib import Path

BUNDLED = {"shapes-64": Path(__file__).resolve().parent.parent / "weights" / "shapes-64"}

COMPONENTS = ("tokenizer", "clip", "text_encoder", "vae", "instruction_encoder", "unet", "unet_inpaint", "scheduler")


def bundled_dir(name: str = "shapes-64") -> Path:
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled model {name!r}; available: {sorted(BUNDLED)}")
    return BUNDLED[name]


MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.30.0",
    "feature_extractor": [None, None],
    "image_encoder": [None, None],
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
