"""The miniature diffusion transformer (``regionedit train world-models --only dit``): a whole
``StableDiffusion3Pipeline`` folder (``<model>/dit``) that the stock pipeline loads without a T5 and runs."""

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from regionedit.models import bundled_dir, configs

TRAIN_DIT = "regionedit train world-models --only dit --batch 32 --out runs/dit --export <model folder>"
COMPONENTS = ("transformer", "vae", "text_encoder", "text_encoder_2")


def _stock_pipeline(folder: Path):
    """As a user loads the folder: the stock pipeline, no T5, no dtype argument."""
    from diffusers import StableDiffusion3Pipeline

    pipe = StableDiffusion3Pipeline.from_pretrained(folder, text_encoder_3=None, tokenizer_3=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generate(pipe, **kw) -> np.ndarray:
    return pipe("a red star on a white background", num_inference_steps=2, height=64, width=64,
                generator=torch.Generator().manual_seed(0), output_type="np", **kw).images


def _assert_image(img) -> None:
    assert isinstance(img, np.ndarray) and img.shape == (1, 64, 64, 3)
    assert np.issubdtype(img.dtype, np.floating) and np.isfinite(img).all()
    assert img.min() >= 0.0 and img.max() <= 1.0


def _log_steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]


def test_dit_trains_exports_a_stock_sd3_folder_and_resumes(tmp_path, monkeypatch):
    from safetensors import safe_open

    from regionedit.cli.main import main
    from regionedit.training import common
    from regionedit.world.training import dit_trainer

    # a bundle-like model folder without a DiT: the run starts from scratch on its text encoder and VAE
    src = bundled_dir()
    model = tmp_path / "model"
    shutil.copytree(src, model, ignore=lambda d, names: ["dit"] if Path(d) == src else [])
    assert not (model / "dit").exists()
    # the trainer logs every 20 steps: every step here, so the log shows which steps ran (and how often)
    monkeypatch.setattr(dit_trainer, "train_loop", functools.partial(common.train_loop, log_every=1))
    out = tmp_path / "run"
    argv = ["train", "world-models", "--only", "dit", "--out", str(out), "--export", str(model), "--batch", "2"]
    assert main(argv + ["--max-steps", "2"]) == 0

    folder = model / "dit"
    state = json.loads((folder / "transformer" / "training_state.json").read_text())
    assert state["steps"] == 2 and state["component"] == "dit" and state["batch"] == 2
    assert state["max_sequence_length"] == configs.DIT_MAX_SEQUENCE_LENGTH
    assert "earlier_training" not in state  # from scratch: there were no weights to continue

    # stored as shipped: fp16 safetensors, configs that neither name a local path nor ask for fp16
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    assert weights.is_file()
    shipped = list(folder.rglob("*.safetensors"))
    assert weights in shipped and len(shipped) == 4  # transformer, vae, both text encoders
    for st in shipped:
        with safe_open(st, "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}, st
    assert not list(folder.rglob("*.bin")) and not list(folder.rglob("*.pt"))
    for cfg in folder.rglob("config.json"):
        text = cfg.read_text()
        assert "_name_or_path" not in json.loads(text) and "float16" not in text, cfg

    pipe = _stock_pipeline(folder)
    assert type(pipe).__name__ == "StableDiffusion3Pipeline" and pipe.text_encoder_3 is None
    assert {name: getattr(pipe, name).dtype for name in COMPONENTS} == {name: torch.float32 for name in COMPONENTS}
    _assert_image(_generate(pipe, max_sequence_length=configs.DIT_MAX_SEQUENCE_LENGTH))
    _assert_image(_generate(pipe))  # the pipeline's default max_sequence_length (256) runs too

    # the same command with a larger budget resumes the run: step 3 only, each step logged once
    assert _log_steps(out / "dit") == [1, 2]
    before = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}
    assert main(argv + ["--max-steps", "3"]) == 0
    assert _log_steps(out / "dit") == [1, 2, 3]
    state = json.loads((folder / "transformer" / "training_state.json").read_text())
    assert state["steps"] == 3 and "earlier_training" not in state
    after = _stock_pipeline(folder).transformer.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the export holds the new weights


def test_build_dit_keeps_the_latent_shape_and_is_small():
    from regionedit.models.configs import build_dit

    torch.manual_seed(0)
    model = build_dit().eval()
    assert sum(p.numel() for p in model.parameters()) < 8_000_000
    x = torch.randn(2, configs.LATENT_CHANNELS, configs.LATENT_SIZE, configs.LATENT_SIZE)
    assert x.shape == (2, 4, 16, 16)
    dim = model.config.joint_attention_dim
    with torch.no_grad():
        y = model(hidden_states=x, timestep=torch.tensor([100.0, 900.0]),
                  encoder_hidden_states=torch.randn(2, 77 + configs.DIT_MAX_SEQUENCE_LENGTH, dim),
                  pooled_projections=torch.randn(2, model.config.pooled_projection_dim)).sample
    assert y.shape == x.shape and torch.isfinite(y).all()


def _bundled_dit() -> Path:
    folder = bundled_dir() / "dit"
    if not (folder / "model_index.json").is_file():
        pytest.skip(f"the bundled folder has no dit/ (train it: {TRAIN_DIT}; then copy <model folder>/dit "
                    f"into {bundled_dir()})")
    return folder


def test_bundled_dit_runs_in_the_stock_pipeline():
    folder = _bundled_dit()
    pipe = _stock_pipeline(folder)
    assert {name: getattr(pipe, name).dtype for name in COMPONENTS} == {name: torch.float32 for name in COMPONENTS}
    _assert_image(_generate(pipe, max_sequence_length=configs.DIT_MAX_SEQUENCE_LENGTH))


def test_bundled_dit_has_a_model_card():
    folder = _bundled_dit()
    card = folder / "README.md"
    assert card.is_file(), "no model card: python benchmarks/world_models.py --only dit --write-cards"
    text = card.read_text()
    assert "Measured quality" in text and "`objects_right`" in text
    assert "max_sequence_length" in text
