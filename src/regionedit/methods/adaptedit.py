"""Seed 002, AdaptEdit ("Edit Where You Mean: Region-Aware Adapter Injection for Mask-Free Local Image Editing"):
retrofit a *frozen* diffusion transformer into a mask-free local editor.

* a **Block Adapter** after every transformer block adds ``gate * adapter(h, c)`` to the block's image tokens,
  where ``c`` is the factorised condition stream (*what*: the instruction's text states; *where*: the region and
  the source latents it acts on; :class:`~.adaptedit_modules.ConditionStream`);
* a **SpatialGate** per block routes the adapter output only into the region (exactly 0 outside it);
* a **MaskPredictor** head, co-trained with a decoupled auxiliary loss (its input, the frozen DiT's features of
  the source with the instruction as prompt, carries no gradient into the editor, and the editor trains on the
  true region most of the time), supplies the region at inference: no user mask;
* the **Region-Aware Loss** weights the latent cells that actually change.

The backbone (an ``SD3Transformer2DModel`` in a ``StableDiffusion3Pipeline`` folder, e.g. the bundled
``shapes-64/dit``), its VAE and text encoders never change; only the condition stream, adapters, gates and the
predictor train (:meth:`AdaptEdit.trainable_parameters`).

Sampling (our reading; the seed does not spell it out): rectified-flow Euler steps from noise with text
classifier-free guidance, and outside the region the latents are replaced at every step by the source latents
noised to the current level (in training, the target equals the source there, so this is the distribution the
adapters learned); the final latents keep the source outside the region before decoding. ``compose=True`` then
pastes the decoded result into the source inside the region, so every pixel outside is bit-identical.

>>> from regionedit.methods import AdaptEdit
>>> m = AdaptEdit("shapes-64")                          # fresh adapters on the bundled frozen DiT
>>> out = m(image, "make the red circle blue", seed=0)   # region from the MaskPredictor
>>> m.save_pretrained("runs/adaptedit/export"); m2 = AdaptEdit.from_pretrained("runs/adaptedit/export")
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .adaptedit_modules import (AdaptEditConfig, BlockAdapter, ConditionStream, MaskPredictor, SpatialGate,
                                changed_cells, mask_loss, region_aware_flow_loss, region_to_tokens)
from .trainable import TrainableMethod

WEIGHTS_NAME = "adaptedit.safetensors"


def resolve_dit(spec: str | Path) -> Path:
    """A ``StableDiffusion3Pipeline`` folder from a spec: the folder itself, a model folder holding ``dit/``, or a
    bundled model name (``"shapes-64"`` -> its ``dit/``)."""
    p = Path(spec).expanduser()
    for cand in (p, p / "dit"):
        if (cand / "model_index.json").exists() and (cand / "transformer").is_dir():
            return cand
    from regionedit.models.bundled import bundled_dir

    try:
        root = bundled_dir(str(spec))
    except ValueError:  # not a bundled name
        root = None
    if root is not None and (Path(root) / "dit" / "model_index.json").exists():
        return Path(root) / "dit"
    raise FileNotFoundError(f"{spec!r} is not a diffusion-transformer folder (a StableDiffusion3Pipeline folder with "
                            "transformer/, or a model folder with dit/); the bundled one is trained by "
                            "`regionedit train world-models --only dit`")


def load_dit_pipeline(folder: Path, dtype=torch.float32):
    """The frozen ``StableDiffusion3Pipeline`` of ``folder`` (without T5 when the folder has none)."""
    from diffusers import StableDiffusion3Pipeline

    index = json.loads((Path(folder) / "model_index.json").read_text())
    kw = {k: None for k in ("text_encoder_3", "tokenizer_3") if (index.get(k) or [None])[0] is None}
    pipe = StableDiffusion3Pipeline.from_pretrained(folder, torch_dtype=dtype, **kw)
    for m in (pipe.transformer, pipe.vae, pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3):
        if m is not None:
            m.eval().requires_grad_(False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@dataclasses.dataclass
class AdaptEditOutput:
    """image: (H, W, 3) uint8 edited image; region: (H, W) float32 in [0, 1], the region the adapters were gated
    to; region_from: "predicted", "given" or "whole image"."""

    image: np.ndarray
    region: np.ndarray
    region_from: str


class AdaptEdit(TrainableMethod):
    """Seed 002 on a frozen SD3-class DiT (see the module docstring). ``dit``: a DiT spec (:func:`resolve_dit`) or
    a loaded ``StableDiffusion3Pipeline``."""

    WEIGHTS_NAME = WEIGHTS_NAME
    SEED_PAPER = "002 AdaptEdit"
    CONFIG_CLASS = AdaptEditConfig
    INFERENCE_SETTINGS = frozenset({"steps", "guidance_scale", "mask_threshold", "use_mask_predictor", "use_gate"})
    TRAIN_COMMAND = "regionedit train adaptedit"

    def __init__(self, dit="shapes-64", config: AdaptEditConfig | None = None):
        self.config = config or AdaptEditConfig()
        if isinstance(dit, (str, Path)):
            self.base_model = str(dit)
            pipe = load_dit_pipeline(resolve_dit(dit))
        else:
            pipe = dit
            self.base_model = str(getattr(pipe, "name_or_path", None) or pipe.config.get("_name_or_path", "unknown"))
        self.pipe = pipe  # the frozen backbone: never trained, never saved with the adapters
        tr = pipe.transformer
        tc = tr.config
        self.patch = int(tc.patch_size)
        self.width = int(tc.num_attention_heads * tc.attention_head_dim)
        self.latent_channels = int(tc.in_channels)
        self.vae_down = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
        self.native_size = int(tc.sample_size) * self.vae_down
        self.grid = (int(tc.sample_size) // self.patch,) * 2
        n_tok = self.grid[0] * self.grid[1]
        n_blocks = len(tr.transformer_blocks)
        d = self.config.adapter_dim
        g = torch.Generator().manual_seed(self.config.init_seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
            # every trainable module of the method, in one ModuleDict (what is saved and trained)
            self.net = nn.ModuleDict({
                "condition": ConditionStream(int(tc.joint_attention_dim), self.latent_channels, self.patch, n_tok, d),
                "adapters": nn.ModuleList(BlockAdapter(self.width, d) for _ in range(n_blocks)),
                "gates": nn.ModuleList(SpatialGate(self.width, d) for _ in range(n_blocks)),
                "predictor": MaskPredictor(self.width, self.latent_channels, self.grid),
            })
        self._ctx: dict | None = None
        self.last_gates: list[torch.Tensor] = []  # each block's gate (B, N, 1) of the last adapted call
        self._hooks = [blk.register_forward_hook(self._hook(i)) for i, blk in enumerate(tr.transformer_blocks)]

    # -- the hooks into the frozen blocks ----------------------------------------------------------------------
    def _hook(self, index: int):
        def fn(module, args, output):
            ctx = self._ctx
            if ctx is None:
                return None
            enc, hid = output
            if ctx["mode"] == "capture":
                if index == ctx["index"] % len(self.net["adapters"]):
                    ctx["feats"] = hid
                return None
            c, region = ctx["condition"], ctx["region_tokens"]
            a = self.net["adapters"][index](hid, c)
            gate = self.net["gates"][index](hid, c, region) if self.config.use_gate else torch.ones_like(hid[..., :1])
            self.last_gates.append(gate)
            return enc, hid + gate * a

        return fn

    # -- frozen encoders -------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> scaled latents (B, C, S/f, S/f) (distribution mode, SD3 scaling)."""
        vae = self.pipe.vae
        lat = vae.encode(images.to(vae.device, vae.dtype)).latent_dist.mode()
        return (lat - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        return vae.decode(latents / vae.config.scaling_factor + (vae.config.shift_factor or 0.0)).sample.clamp(-1, 1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(states (B, L, joint_dim), pooled (B, pooled_dim))`` as the stock pipeline conditions the DiT."""
        cond, _, pooled, _ = self.pipe.encode_prompt(list(texts), None, None, do_classifier_free_guidance=False,
                                                     max_sequence_length=self.config.max_sequence_length)
        return cond, pooled

    # -- the three calls of the method ----------------------------------------------------------------------
    def predict_region(self, source: torch.Tensor, text: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """MaskPredictor logits (B, 1, h, w) at latent resolution from scaled source latents (B, C, h, w) and the
        instruction's text states: the frozen DiT reads the clean source (timestep 0) with the instruction as
        prompt, adapters off; the head reads its block ``predictor_block``'s image tokens."""
        self._ctx = {"mode": "capture", "index": self.config.predictor_block, "feats": None}
        try:
            with torch.no_grad():
                self.pipe.transformer(hidden_states=source, timestep=torch.zeros(source.shape[0]),
                                      encoder_hidden_states=text, pooled_projections=pooled)
            feats = self._ctx["feats"]
        finally:
            self._ctx = None
        return self.net["predictor"](feats.detach(), source)

    def velocity(self, latents: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor, pooled: torch.Tensor,
                 source: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        """The adapted DiT's velocity (B, C, h, w). latents: noisy (B, C, h, w); timestep: (B,) in [0, 1000];
        source: clean scaled source latents; region: (B, 1, h, w) in [0, 1] at latent resolution."""
        c = self.net["condition"](text, source, region)
        self.last_gates = []
        self._ctx = {"mode": "adapt", "condition": c, "region_tokens": region_to_tokens(region, self.grid)}
        try:
            return self.pipe.transformer(hidden_states=latents, timestep=timestep, encoder_hidden_states=text,
                                         pooled_projections=pooled).sample
        finally:
            self._ctx = None

    def training_loss(self, source: torch.Tensor, target: torch.Tensor, region: torch.Tensor, instructions: list[str],
                      generator: torch.Generator, p_drop_text: float = 0.1) -> tuple[torch.Tensor, dict]:
        """Seed 002's objective on one batch: ``L = L_region-aware-flow + mask_loss_weight * L_mask``.

        source, target: (B, 3, S, S) in [-1, 1] at the native size; region: (B, 1, S, S) in [0, 1], the true edit
        region; instructions: B strings (each dropped to "" with probability ``p_drop_text`` for guidance).
        Draws the drops, the predicted-region switch, noise levels and noise from ``generator``, in that order.
        Returns (loss, logs)."""
        cfg = self.config
        b = source.shape[0]
        src, tgt = self.encode_images(source), self.encode_images(target)
        drop = torch.rand(b, generator=generator) < p_drop_text
        text, pooled = self.encode_text(["" if d else t for d, t in zip(drop.tolist(), instructions)])
        true = F.adaptive_avg_pool2d(region.float(), src.shape[-2:])
        logits = self.predict_region(src, *self.encode_text(instructions))  # the predictor always reads the instruction
        l_mask = mask_loss(logits, true)
        use_pred = (torch.rand(b, generator=generator) < cfg.predicted_mask_prob).view(-1, 1, 1, 1)
        r = torch.where(use_pred, torch.sigmoid(logits).detach(), true)
        s = torch.sigmoid(torch.randn(b, generator=generator))
        noise = torch.randn(tgt.shape, generator=generator)
        sv = s.view(-1, 1, 1, 1)
        noisy = (1 - sv) * tgt + sv * noise
        v = self.velocity(noisy, s * 1000, text, pooled, src, r)
        changed = changed_cells(source, target, tgt.shape[-2:], cfg.change_threshold)
        l_edit = region_aware_flow_loss(v, noise - tgt, changed, cfg.region_aware_weight)
        loss = l_edit + cfg.mask_loss_weight * l_mask
        with torch.no_grad():
            hard = torch.sigmoid(logits) > cfg.mask_threshold
            t_hard = true > 0.5
            iou = ((hard & t_hard).flatten(1).sum(-1) / (hard | t_hard).flatten(1).sum(-1).clamp(min=1)).mean()
        return loss, {"loss": loss.item(), "edit": l_edit.item(), "mask": l_mask.item(), "mask_iou": iou.item()}

    # -- editing ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, image: np.ndarray, instruction: str, mask: np.ndarray | None = None, seed: int = 0,
                 steps: int | None = None, guidance_scale: float | None = None, compose: bool = False) -> AdaptEditOutput:
        """Edit ``image`` ((H, W, 3) uint8 RGB) by ``instruction``. ``mask``: (H, W) region in [0, 1] / bool to use
        instead of the MaskPredictor's. ``compose``: paste the result into the source inside the region (pixels
        outside bit-identical). Deterministic for a given ``seed``."""
        from regionedit.methods.descriptive_edit import _resize, images_to_tensor

        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError("instruction must be a non-empty string")
        cfg = self.config
        steps = cfg.steps if steps is None else int(steps)
        guidance = cfg.guidance_scale if guidance_scale is None else float(guidance_scale)
        x = images_to_tensor([img], self.native_size)
        src = self.encode_images(x)
        text, pooled = self.encode_text([instruction])
        if mask is not None:
            m = np.asarray(mask, dtype=np.float32)
            if m.shape != img.shape[:2]:
                raise ValueError(f"mask has shape {m.shape}, the image {img.shape[:2]}; give one value per pixel")
            m = torch.from_numpy(m.clip(0, 1))[None, None]
            region = F.adaptive_avg_pool2d(F.interpolate(m, size=(self.native_size,) * 2, mode="bilinear"), src.shape[-2:])
            region_from = "given"
        elif cfg.use_mask_predictor:
            region = (torch.sigmoid(self.predict_region(src, text, pooled)) > cfg.mask_threshold).float()
            region_from = "predicted"
        else:
            region = torch.ones_like(src[:, :1])
            region_from = "whole image"
        keep = (region <= 0).float()  # latent cells that stay the source's
        null_text, null_pooled = self.encode_text([""])
        sched = self.pipe.scheduler.__class__.from_config(self.pipe.scheduler.config)
        sched.set_timesteps(steps)
        gen = torch.Generator().manual_seed(int(seed))
        noise = torch.randn(src.shape, generator=gen)
        lat = noise.clone()
        for t in sched.timesteps:
            s = (t / 1000.0).view(1)
            lat = keep * ((1 - s) * src + s * noise) + (1 - keep) * lat
            both = self.velocity(lat.repeat(2, 1, 1, 1), s.repeat(2) * 1000, torch.cat([null_text, text]),
                                 torch.cat([null_pooled, pooled]), src.repeat(2, 1, 1, 1), region.repeat(2, 1, 1, 1))
            v_u, v_c = both.chunk(2)
            lat = sched.step(v_u + guidance * (v_c - v_u), t, lat).prev_sample
        lat = keep * src + (1 - keep) * lat
        out = self.decode_latents(lat).float()
        if not bool(torch.isfinite(out).all()):
            raise RuntimeError("the edit produced non-finite values; the adapter or base weights are probably corrupted")
        arr = ((out[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        arr = _resize(arr, img.shape[:2])
        region_px = F.interpolate(region, size=img.shape[:2], mode="nearest")[0, 0].numpy().astype(np.float32)
        if compose:
            from regionedit.compose import compose as paste

            arr = paste(img, arr, region_px, feather_px=0, method="hard")
        return AdaptEditOutput(image=arr, region=region_px, region_from=region_from)

    # -- saving / loading (TrainableMethod.save_pretrained writes the folder) ---------------------------------------
    @classmethod
    def from_pretrained(cls, folder: str | Path, dit=None, **overrides) -> "AdaptEdit":
        """Load a folder written by :meth:`save_pretrained`. ``dit``: the frozen base (default: the ``base_model``
        its ``config.json`` names); ``overrides``: inference settings to change (``steps``, ``guidance_scale``,
        ``mask_threshold``, ``use_mask_predictor``, ``use_gate``)."""
        return super().from_pretrained(folder, base=dit, overrides=overrides)

    @classmethod
    def _from_saved(cls, base, config):
        return cls(base, config)

    def _model_card(self, training: dict | None, quality: dict | None) -> str:
        cfg = self.config
        lines = ["# AdaptEdit adapters (seed 002)", "",
                 "Block Adapters + SpatialGates at every block of a frozen SD3-class diffusion transformer, a fused",
                 "what/where condition stream and a co-trained MaskPredictor (\"Edit Where You Mean\"). The base DiT is",
                 "not included; it is loaded by name or path.", "",
                 f"- base DiT: `{self.base_model}`",
                 f"- blocks adapted: {len(self.net['adapters'])}; adapter width {cfg.adapter_dim}",
                 f"- trainable parameters: {self.num_trainable():,}",
                 f"- ablation switches: gate {cfg.use_gate}, mask predictor {cfg.use_mask_predictor}, region-aware "
                 f"weight {cfg.region_aware_weight}",
                 f"- inference defaults: {cfg.steps} Euler steps, guidance {cfg.guidance_scale}", "", "## Training", ""]
        lines += ([f"- {k}: {v}" for k, v in training.items()] if training else
                  ["Untrained: every adapter's output projection is zero, so the DiT's prediction is unchanged."])
        lines += ["", "## Measured quality", ""]
        lines += ([f"- {k}: {v}" for k, v in quality.items()] if quality else
                  ["Not measured yet (`regionedit eval --methods adaptedit`)."])
        lines += ["", "Load: `regionedit.methods.AdaptEdit.from_pretrained(folder)`.", ""]
        return "\n".join(lines)

