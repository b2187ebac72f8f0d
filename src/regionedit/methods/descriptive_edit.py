"""Seed 004, DescriptiveEdit ("Describe, Don't Dictate", ICCV 2025): edit an image from a *description of the
desired image* instead of an instruction.

Editing becomes text-to-image generation conditioned on a reference image (seed 004, "Method > Overall
Architecture"): two structurally identical UNets, both the frozen text-to-image UNet of the model folder,

* the **Ref-UNet** encodes the clean source latents ``Z_o^0`` (timestep ``s = 0``, seed "Loss & Training":
  the reference is never noised) with the null text, and records its self-attention features per layer;
* the **denoising UNet** generates the edited latents from noise conditioned on the description ``T_e``;

joined by Attention Bridges at every self-attention (:mod:`.attention_bridge`: ``Q`` from the Ref-UNet, ``K``
and ``V`` from the denoising UNet, fused by a zero-initialised ``Linear``). Only the bridges (fusion Linear +
LoRA on the bridge's Q/K/V) train; the base UNet stays frozen.

Inference uses the dual classifier-free guidance of seed 004, "Method > Key Designs 3. Dual Guidance Inference"
(:func:`dual_guidance`)::

    eps~ = eps(∅, ∅) + lambda_I * (eps(I_o, ∅) - eps(∅, ∅)) + lambda_T * (eps(I_o, T_e) - eps(I_o, ∅))

three predictions per step (batched in one UNet call): no reference and null text; reference and null text;
reference and description. ``I_o = ∅`` switches the bridges off (their output is multiplied by 0), so
``eps(∅, ∅)`` is exactly the frozen T2I model's unconditional prediction (our reading: the seed does not say how a
dropped reference is represented).

>>> from regionedit.methods import DescriptiveEdit
>>> m = DescriptiveEdit("shapes-64")                     # fresh (zero-initialised) bridges on the bundled models
>>> out = m(image, "turn the red circle blue", seed=0)    # instruction -> describer -> description
>>> out = m(image, "a blue circle on a white background", is_description=True)
>>> m.save_pretrained("runs/descriptive/export"); m2 = DescriptiveEdit.from_pretrained("runs/descriptive/export")
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .attention_bridge import BridgeState, RefFeatures, attach, bridge_layer_names, build_bridges

WEIGHTS_NAME = "bridges.safetensors"
FORMAT_VERSION = 1


@dataclasses.dataclass
class DescriptiveEditConfig:
    """Architecture and inference settings (saved in ``config.json``).

    bridge_layers: names of the UNet's self-attention modules that get a bridge
        (``"down_blocks.0.attentions.0.transformer_blocks.0.attn1"``, ...); None = every self-attention (the seed).
    lora_rank: rank of the LoRA updates of the bridge's Q/K/V projections (seed: 64 on SD 1.5); 0 = bridge only
        (only the zero-initialised fusion Linear trains).
    lora_alpha: LoRA scale numerator (update = alpha / rank * up(down(x))); None = lora_rank (seed: alpha = rank).
    lambda_I: reference-image guidance strength (seed: 1 to 2.5 gives the best trade-off; larger = closer to the
        source image).
    lambda_T: text (description) guidance strength.
    steps: denoising steps of the model folder's scheduler.
    null_text: the ``T = ∅`` prompt (also the Ref-UNet's text conditioning).
    init_seed: seed of the LoRA ``down`` initialisation (its ``up`` and the fusion Linear start at zero).
    """

    bridge_layers: tuple[str, ...] | None = None
    lora_rank: int = 4
    lora_alpha: float | None = None
    lambda_I: float = 1.5
    lambda_T: float = 4.0
    steps: int = 20
    null_text: str = ""
    init_seed: int = 0

    def __post_init__(self) -> None:
        if self.bridge_layers is not None:
            self.bridge_layers = tuple(self.bridge_layers)
        if self.lora_rank < 0:
            raise ValueError(f"lora_rank must be >= 0 (0 = bridge only), got {self.lora_rank}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["bridge_layers"] = list(self.bridge_layers) if self.bridge_layers is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DescriptiveEditConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown DescriptiveEditConfig fields {unknown}; known: {sorted(names)}")
        return cls(**d)


def dual_guidance(eps_uncond: torch.Tensor, eps_image: torch.Tensor, eps_full: torch.Tensor,
                  lambda_I: float, lambda_T: float) -> torch.Tensor:
    """Seed 004, Method > Key Designs 3 (Dual Guidance Inference, after InstructPix2Pix)::

        eps~ = eps(∅, ∅) + lambda_I * (eps(I_o, ∅) - eps(∅, ∅)) + lambda_T * (eps(I_o, T_e) - eps(I_o, ∅))

    ``eps_uncond`` = eps(∅, ∅), ``eps_image`` = eps(I_o, ∅), ``eps_full`` = eps(I_o, T_e); any equal shapes."""
    return eps_uncond + lambda_I * (eps_image - eps_uncond) + lambda_T * (eps_full - eps_image)


def _weight_sharing_copy(unet: nn.Module) -> nn.Module:
    """A structurally identical copy of ``unet`` whose parameters and buffers *are* ``unet``'s (no extra memory;
    both are frozen), with its own modules, so its attention processors can differ."""
    memo: dict[int, Any] = {id(t): t for t in unet.parameters()}
    memo.update({id(t): t for t in unet.buffers()})
    return copy.deepcopy(unet, memo)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (size[0], size[1], 3) uint8 (Lanczos; unchanged when already that size)."""
    from PIL import Image

    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.LANCZOS))


def images_to_tensor(images: list[np.ndarray], size: int) -> torch.Tensor:
    """B (H, W, 3) uint8 RGB arrays -> (B, 3, size, size) float32 in [-1, 1] (each resized to the model's native
    square size)."""
    arr = np.stack([_resize(np.asarray(im), (size, size)) for im in images]).astype(np.float32)
    return torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0


class DescriptiveEdit:
    """The DescriptiveEdit method on a model folder's frozen text-to-image UNet.

    ``models``: a :class:`regionedit.models.Models` or what :func:`regionedit.models.load` takes (``"shapes-64"``,
    a diffusers folder, a hub id); it needs ``unet`` (4-channel T2I), ``vae``, ``text_encoder``, ``tokenizer`` and
    ``scheduler``. ``config``: :class:`DescriptiveEditConfig`. ``describer``: turns an instruction into a
    description (default :class:`regionedit.describe.TemplateDescriber`).

    Attributes: ``unet`` (the denoising UNet, bridged), ``ref_unet`` (the Ref-UNet), both weight-sharing copies of
    ``models.unet``, which is left untouched; ``bridges`` (``nn.ModuleDict``: the only trainable parameters).
    """

    def __init__(self, models="shapes-64", config: DescriptiveEditConfig | None = None, describer=None):
        if isinstance(models, (str, Path)):
            from regionedit.models import load

            models = load(models)
        self.models = models
        self.config = config or DescriptiveEditConfig()
        self.describer = describer
        base = models.unet
        if base is None:
            raise ValueError(f"{getattr(models, 'model_id', 'the model')} has no text-to-image UNet (its unet has 9 "
                             "input channels); DescriptiveEdit needs the 4-channel T2I UNet of a Stable Diffusion folder")
        base.requires_grad_(False).eval()
        self.unet = _weight_sharing_copy(base)  # denoising UNet (frozen base + bridges)
        self.ref_unet = _weight_sharing_copy(base)  # Ref-UNet (frozen; encodes the source at s = 0)
        all_names = bridge_layer_names(self.unet)
        names = list(self.config.bridge_layers) if self.config.bridge_layers is not None else all_names
        missing = [n for n in names if n not in all_names]
        if missing:
            raise ValueError(f"bridge_layers {missing} are not self-attention layers of this UNet; choose from {all_names}")
        self.bridge_names = names
        self.bridges = build_bridges(self.unet, names, self.config.lora_rank, self.config.lora_alpha,
                                     self.config.init_seed)
        self.state = BridgeState()
        attach(self.unet, self.ref_unet, self.bridges, names, self.state)
        self.vae = models.vae
        self.vae_scale = float(self.vae.config.scaling_factor)
        self.down = 2 ** (len(self.vae.config.block_out_channels) - 1)

    # -- identity ------------------------------------------------------------------------------------------
    @property
    def native_size(self) -> int:
        """Pixel size the base model generates (UNet sample size x VAE downsampling): 64 for shapes-64."""
        return int(self.unet.config.sample_size) * self.down

    @property
    def base_model(self) -> str:
        return str(getattr(self.models, "model_id", "unknown"))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The bridge parameters (fusion Linear + LoRA): the only ones the seed trains."""
        return [p for p in self.bridges.parameters() if p.requires_grad]

    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.bridges.parameters())

    # -- building blocks -----------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Prompts -> (B, L, D) text-encoder hidden states (the UNet's ``encoder_hidden_states``)."""
        tok = self.models.tokenizer(list(texts), padding="max_length", max_length=self.models.tokenizer.model_max_length,
                                    truncation=True, return_tensors="pt")
        return self.models.text_encoder(tok.input_ids.to(self.vae.device))[0]

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> scaled latents (B, 4, S/f, S/f) (distribution mode)."""
        return self.vae.encode(images.to(self.vae.device, self.vae.dtype)).latent_dist.mode() * self.vae_scale

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.vae_scale).sample.clamp(-1, 1)

    @torch.no_grad()
    def reference_features(self, source_latents: torch.Tensor) -> dict[str, RefFeatures]:
        """Run the frozen Ref-UNet on the clean source latents ``Z_o^0`` (B, 4, h, w) at timestep ``s = 0`` (seed 004,
        Loss & Training: the reference stays clean) with the null text; returns its self-attention features per
        bridged layer."""
        b = source_latents.shape[0]
        null = self.encode_text([self.config.null_text]).expand(b, -1, -1)
        self.state.ref, self.state.recording = {}, True
        try:
            self.ref_unet(source_latents, torch.zeros(b, dtype=torch.long, device=source_latents.device),
                          encoder_hidden_states=null)
            return self.state.ref
        finally:
            self.state.ref, self.state.recording = None, False

    def predict_noise(self, latents: torch.Tensor, t, text_emb: torch.Tensor,
                      reference: dict[str, RefFeatures] | None = None, image_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The Cross-Attentive UNet's prediction ``eps(Z_e^t, t, T_e, Z_o^0, 0)`` (B, 4, h, w), in the scheduler's
        parametrisation (epsilon or v). ``reference``: :meth:`reference_features` (batch 1 or a divisor of B;
        None = no reference: the plain T2I UNet). ``image_mask``: (B,) 1 = sees the reference, 0 = ``I_o = ∅``."""
        self.state.ref, self.state.mask = reference, image_mask
        try:
            return self.unet(latents, t, encoder_hidden_states=text_emb).sample
        finally:
            self.state.ref, self.state.mask = None, None

    def guided_noise(self, latents: torch.Tensor, t, text_emb: torch.Tensor, null_emb: torch.Tensor,
                     reference: dict[str, RefFeatures], lambda_I: float, lambda_T: float) -> torch.Tensor:
        """Dual classifier-free guidance (:func:`dual_guidance`): one batched UNet call over the three conditions
        (∅, ∅), (I_o, ∅), (I_o, T_e). latents (B, 4, h, w); text_emb / null_emb (B, L, D)."""
        b = latents.shape[0]
        x = torch.cat([latents] * 3)
        emb = torch.cat([null_emb, null_emb, text_emb])
        mask = torch.cat([torch.zeros(b), torch.ones(b), torch.ones(b)]).to(latents.device, latents.dtype)
        eps_uncond, eps_image, eps_full = self.predict_noise(x, t, emb, reference, mask).chunk(3)
        return dual_guidance(eps_uncond, eps_image, eps_full, lambda_I, lambda_T)

    def describe(self, instruction: str, source_caption: str | None = None) -> str:
        """An instruction -> the description of the edited image (``Description.target_description``: of the
        whole image when ``source_caption`` is given, else of the edited region)."""
        if self.describer is None:
            from regionedit.describe import TemplateDescriber

            self.describer = TemplateDescriber()
        d = self.describer(instruction, source_caption)
        if d.error is not None or not d.target_description:
            raise ValueError(f"could not turn the instruction {instruction!r} into a description ({d.error}); pass a "
                             "description of the desired image with is_description=True")
        return d.target_description

    # -- the edit ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, image, text: str, is_description: bool = False, seed: int = 0, steps: int | None = None,
                 lambda_I: float | None = None, lambda_T: float | None = None, source_caption: str | None = None,
                 callback=None) -> np.ndarray:
        """Edit ``image`` towards ``text``.

        image: (H, W, 3) uint8 RGB (or anything :func:`regionedit.io.load_image` reads); resized to the model's
            native square size for the edit and the result resized back to (H, W).
        text: a description of the desired image (``is_description=True``) or an instruction, which the describer
            turns into one first (``source_caption``, if known, makes it a whole-image description).
        seed: the initial noise (``torch.Generator().manual_seed(seed)``); steps / lambda_I / lambda_T: None = the
            config's. ``callback(step_index, timestep, latents)``: called after every step.
        Returns (H, W, 3) uint8 RGB."""
        from regionedit.io import load_image

        img = load_image(image)
        description = text if is_description else self.describe(text, source_caption)
        if not isinstance(description, str) or not description.strip():
            raise ValueError("the description is empty; pass a description of the desired image")
        cfg = self.config
        steps = cfg.steps if steps is None else int(steps)
        lam_i = cfg.lambda_I if lambda_I is None else float(lambda_I)
        lam_t = cfg.lambda_T if lambda_T is None else float(lambda_T)
        dev, dt = self.vae.device, self.vae.dtype
        src = self.encode_images(images_to_tensor([img], self.native_size))
        reference = self.reference_features(src)
        text_emb, null_emb = self.encode_text([description]), self.encode_text([cfg.null_text])
        sched = copy.deepcopy(self.models.scheduler)
        sched.set_timesteps(steps)
        gen = torch.Generator().manual_seed(int(seed))
        lat = torch.randn(src.shape, generator=gen).to(dev, dt) * sched.init_noise_sigma
        for i, t in enumerate(sched.timesteps):
            eps = self.guided_noise(sched.scale_model_input(lat, t), t, text_emb, null_emb, reference, lam_i, lam_t)
            lat = sched.step(eps, t, lat).prev_sample
            if callback is not None:
                callback(i, t, lat)
        out = self.decode_latents(lat).float().cpu()
        if not bool(torch.isfinite(out).all()):
            raise RuntimeError("the edit produced non-finite values; the bridge or base weights are probably corrupted")
        arr = ((out[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        return _resize(arr, img.shape[:2])

    # -- saving / loading ----------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, training: dict | None = None,
                        dtype: torch.dtype = torch.float32) -> Path:
        """Write ``folder/bridges.safetensors`` (the bridge + LoRA weights only, in ``dtype``: float32, or float16
        for a bundle; loading casts back to float32), ``config.json`` (the config, the base model it was trained on,
        the bridged layers) and a model card ``README.md``. The base models are not copied. ``training``: the
        training record for the card and ``config.json`` (None: untrained)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.bridges.state_dict().items()}
        tmp = folder / (WEIGHTS_NAME + ".tmp")
        save_file(tensors, str(tmp), metadata={"format": "pt", "method": "descriptive_edit"})
        os.replace(tmp, folder / WEIGHTS_NAME)
        meta = {"_class_name": "DescriptiveEdit", "format_version": FORMAT_VERSION, "seed_paper": "004 DescriptiveEdit",
                "base_model": self.base_model, "config": self.config.to_dict(), "bridged_layers": self.bridge_names,
                "trainable_parameters": self.num_trainable(), "training": training}
        _atomic_write(folder / "config.json", json.dumps(meta, indent=2) + "\n")
        _atomic_write(folder / "README.md", self._model_card(training))
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, models=None, describer=None, **overrides) -> "DescriptiveEdit":
        """Load a folder written by :meth:`save_pretrained`. ``models``: the base models (default: load the
        ``base_model`` its ``config.json`` names); ``overrides``: config fields to change for inference
        (``lambda_I``, ``lambda_T``, ``steps``, ``null_text``; architecture fields must match the weights)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg_path = folder / "config.json"
        if not cfg_path.exists() or not (folder / WEIGHTS_NAME).exists():
            raise FileNotFoundError(f"{folder} is not a DescriptiveEdit folder (needs config.json and {WEIGHTS_NAME}); "
                                    "write one with DescriptiveEdit.save_pretrained or regionedit's descriptive trainer")
        meta = json.loads(cfg_path.read_text())
        if meta.get("_class_name") != "DescriptiveEdit":
            raise ValueError(f"{cfg_path} describes a {meta.get('_class_name')!r}, not a DescriptiveEdit")
        d = dict(meta["config"])
        arch = {"bridge_layers", "lora_rank", "lora_alpha"}
        if arch & set(overrides):
            raise ValueError(f"{sorted(arch & set(overrides))} are fixed by the saved weights; only inference settings "
                             "can be overridden")
        d.update(overrides)
        config = DescriptiveEditConfig.from_dict(d)
        method = cls(models if models is not None else meta["base_model"], config, describer)
        sd = load_file(str(folder / WEIGHTS_NAME))
        missing, unexpected = method.bridges.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise ValueError(f"{folder / WEIGHTS_NAME} does not match the base model's bridges (missing {list(missing)[:4]}, "
                             f"unexpected {list(unexpected)[:4]}); it was trained on another base model than "
                             f"{method.base_model}")
        return method

    def _model_card(self, training: dict | None) -> str:
        cfg = self.config
        lines = [
            "# DescriptiveEdit bridges (seed 004)",
            "",
            "Attention Bridge weights for *DescriptiveEdit* (\"Describe, Don't Dictate\", ICCV 2025): edit an image from",
            "a description of the desired image. A frozen Ref-UNet (a copy of the base text-to-image UNet) encodes the",
            "clean source latents at s = 0; at every bridged self-attention of the denoising UNet,",
            "Z' = CA(Q from the Ref-UNet, K and V from the denoising UNet) is added to the self-attention output through a",
            "zero-initialised Linear (Z_in = Z + Linear(Z')). Dual guidance:",
            "eps = eps(0,0) + lambda_I (eps(I,0) - eps(0,0)) + lambda_T (eps(I,T) - eps(I,0)).",
            "",
            f"- base model (not included; loaded by name/path): `{self.base_model}`",
            f"- bridged layers: {len(self.bridge_names)} self-attentions",
            f"- LoRA rank on the bridge Q/K/V: {cfg.lora_rank}" + (" (bridge only: fusion Linear)" if cfg.lora_rank == 0 else ""),
            f"- trainable parameters: {self.num_trainable():,}",
            f"- inference defaults: lambda_I {cfg.lambda_I}, lambda_T {cfg.lambda_T}, {cfg.steps} steps",
            "",
            "## Training",
            "",
        ]
        if not training:
            lines += ["Untrained: the fusion Linears are zero, so this folder reproduces the base text-to-image model "
                      "exactly (the source image has no influence yet)."]
        else:
            lines += [f"- {k}: {v}" for k, v in training.items()]
        lines += ["", "## Measured quality", "", "Not measured yet (no `regionedit eval` run on these weights).", "",
                  "Load: `regionedit.methods.DescriptiveEdit.from_pretrained(folder)`.", ""]
        return "\n".join(lines)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
