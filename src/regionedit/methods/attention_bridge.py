"""Attention Bridge layers of seed 004 (DescriptiveEdit), attached to a diffusers ``UNet2DConditionModel`` through
custom attention processors on its self-attention (``attn1``) modules; diffusers itself is not modified.

Seed 004, "Method > Key Designs":

* 1. *Cross-Attentive UNet with Attention Bridge*: between the self-attention layers of the denoising UNet and
  of the Ref-UNet a cross-attention is added whose **Q comes from the Ref-UNet's self-attention** (``Q_{I_o}``,
  the source image) and whose **K and V come from the denoising UNet's self-attention** (``K_{T_e}``,
  ``V_{T_e}``, the image being generated from the description): ``Z' = CA(Q_{I_o}, K_{T_e}, V_{T_e})``. (The
  seed calls this the "reversed cross-attention direction" relative to Animate Anyone's reference UNet.)
* 2. *Adaptive Attention Fusion*: ``Z^in = Z + Linear(Z')``, where ``Z`` is the denoising UNet's own
  self-attention output and ``Linear`` is initialised with zero weights, so at initialisation the
  Cross-Attentive UNet *is* the frozen text-to-image UNet.

How it runs here. The Ref-UNet's ``attn1`` processors (:class:`RefCacheProcessor`) record, per layer, the
self-attention input ``h_ref`` (B, N, C) and its query ``Q_{I_o} = to_q(h_ref)`` (B, N, inner); the denoising
UNet's ``attn1`` processors (:class:`BridgeProcessor`) compute their own output ``Z`` with the original
processor, then ``K_{T_e} = to_k(h)``, ``V_{T_e} = to_v(h)`` from their own input ``h``, the bridge attention
and the fused sum. The base projections ``to_q`` / ``to_k`` / ``to_v`` are the frozen ones of the two UNets
(the bridge is initialised from the self-attention it sits beside); the bridge's trainable parameters are
low-rank (LoRA) updates of those three projections (rank 0: none, "bridge only") and the zero-initialised
fusion ``Linear``.

Only the standard SD self-attention is supported (no group/spatial norm, no q/k norm, no residual inside the
attention, output factor 1); :func:`bridge_layer_names` refuses anything else with a clear error.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass
class RefFeatures:
    """What the Ref-UNet records at one self-attention layer.

    Attributes:
        hidden: (B_ref, N, C) float: the layer's self-attention input (after the block's norm).
        query: (B_ref, N, inner) float: ``Q_{I_o} = to_q(hidden)`` with the Ref-UNet's frozen projection.
    """

    hidden: torch.Tensor
    query: torch.Tensor


class BridgeState:
    """Shared between the processors of one Ref-UNet / denoising-UNet pair.

    ``recording``: the Ref-UNet's processors store :class:`RefFeatures` in ``ref`` while True.
    ``ref``: layer name -> :class:`RefFeatures` (None: the bridges are off and the denoising UNet is the plain T2I
    UNet). ``mask``: None, or (B,) float, 1 where sample b sees the reference image and 0 where it is dropped
    (the ``I_o = ∅`` condition of the dual guidance and of the 5 % image drop in training)."""

    def __init__(self) -> None:
        self.recording = False
        self.ref: dict[str, RefFeatures] | None = None
        self.mask: torch.Tensor | None = None


def _uninitialised_linear(d_in: int, d_out: int, bias: bool) -> nn.Linear:
    # skip_init: no draw from torch's global generator (library code never changes global RNG state)
    return torch.nn.utils.skip_init(nn.Linear, d_in, d_out, bias=bias)


class LoRA(nn.Module):
    """Low-rank update ``x -> scale * up(down(x))`` of a frozen projection; ``up`` is zero-initialised (the update
    starts at 0), ``down`` ~ N(0, 1/d_in) from ``generator``. x: (..., d_in) -> (..., d_out)."""

    def __init__(self, d_in: int, d_out: int, rank: int, alpha: float, generator: torch.Generator):
        super().__init__()
        self.down = _uninitialised_linear(d_in, rank, bias=False)
        self.up = _uninitialised_linear(rank, d_out, bias=False)
        self.scale = float(alpha) / rank
        with torch.no_grad():
            self.down.weight.copy_(torch.randn(rank, d_in, generator=generator) / math.sqrt(d_in))
            self.up.weight.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x)) * self.scale


class AttentionBridge(nn.Module):
    """One Attention Bridge (seed 004, Method > Key Designs 1 and 2) beside one self-attention layer.

    ``forward(ref, attn, hidden_states)`` returns ``Linear(Z')`` (B, N, query_dim), where
    ``Z' = CA(Q_{I_o}, K_{T_e}, V_{T_e})``:

    * ``Q_{I_o}``: the **Ref-UNet**'s self-attention query at this layer (``ref.query``, + LoRA on ``ref.hidden``);
    * ``K_{T_e}``, ``V_{T_e}``: ``attn.to_k`` / ``attn.to_v`` of the **denoising UNet**'s self-attention applied to
      its own input ``hidden_states`` (+ LoRA);

    multi-head scaled dot-product attention with the layer's head count, heads merged, then ``fuse`` (the
    zero-initialised ``Linear`` of "Adaptive Attention Fusion"). The caller adds the result to the self-attention
    output ``Z``. A reference batch of 1 (or of B / k) is repeated to the denoising batch B.
    """

    def __init__(self, query_dim: int, inner_dim: int, heads: int, lora_rank: int = 0, lora_alpha: float | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.heads = int(heads)
        self.fuse = _uninitialised_linear(inner_dim, query_dim, bias=True)
        with torch.no_grad():  # zero-initialised (seed 004, Adaptive Attention Fusion): Linear(Z') = 0 at init
            self.fuse.weight.zero_()
            self.fuse.bias.zero_()
        self.lora_rank = int(lora_rank)
        if self.lora_rank > 0:
            g = generator if generator is not None else torch.Generator().manual_seed(0)
            alpha = float(lora_alpha if lora_alpha is not None else lora_rank)
            self.lora_q = LoRA(query_dim, inner_dim, self.lora_rank, alpha, g)
            self.lora_k = LoRA(query_dim, inner_dim, self.lora_rank, alpha, g)
            self.lora_v = LoRA(query_dim, inner_dim, self.lora_rank, alpha, g)

    def forward(self, ref: RefFeatures, attn: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
        b, n, _ = hidden_states.shape
        q, ref_hidden = ref.query, ref.hidden
        if q.shape[1] != n:
            raise ValueError(f"the Ref-UNet's features have {q.shape[1]} tokens at this layer but the denoising UNet has "
                             f"{n}: encode the source image at the same latent size as the latents being denoised")
        if q.shape[0] != b:
            if b % q.shape[0]:
                raise ValueError(f"reference batch {q.shape[0]} does not divide the denoising batch {b}")
            reps = b // q.shape[0]
            q, ref_hidden = q.repeat(reps, 1, 1), ref_hidden.repeat(reps, 1, 1)
        # Seed 004, Method > Key Designs 1: Q from the Ref-UNet (I_o), K and V from the denoising UNet (T_e)
        k = attn.to_k(hidden_states)
        v = attn.to_v(hidden_states)
        if self.lora_rank > 0:
            q = q + self.lora_q(ref_hidden)
            k = k + self.lora_k(hidden_states)
            v = v + self.lora_v(hidden_states)
        inner = k.shape[-1]
        hd = inner // self.heads
        q = q.view(b, -1, self.heads, hd).transpose(1, 2)
        k = k.view(b, -1, self.heads, hd).transpose(1, 2)
        v = v.view(b, -1, self.heads, hd).transpose(1, 2)
        z = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False)  # Z' (B, heads, N, hd)
        z = z.transpose(1, 2).reshape(b, n, inner)
        # Seed 004, Method > Key Designs 2 (Adaptive Attention Fusion): the caller forms Z^in = Z + Linear(Z')
        return self.fuse(z)


class RefCacheProcessor:
    """Attention processor for the Ref-UNet's ``attn1``: records :class:`RefFeatures` when ``state.recording``,
    then runs the original processor unchanged."""

    def __init__(self, base, name: str, state: BridgeState):
        self.base, self.name, self.state = base, name, state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        if self.state.recording and self.state.ref is not None:
            self.state.ref[self.name] = RefFeatures(hidden=hidden_states, query=attn.to_q(hidden_states))
        return self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)


class BridgeProcessor:
    """Attention processor for the denoising UNet's ``attn1``: ``Z`` from the original processor, then
    ``Z^in = Z + mask * Linear(Z')`` (:class:`AttentionBridge`) when the Ref-UNet's features for this layer are set;
    exactly ``Z`` otherwise."""

    def __init__(self, base, bridge: AttentionBridge, name: str, state: BridgeState):
        self.base, self.bridge, self.name, self.state = base, bridge, name, state

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        z = self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        ref = self.state.ref.get(self.name) if self.state.ref is not None else None
        if ref is None:
            return z
        out = self.bridge(ref, attn, hidden_states)
        if self.state.mask is not None:
            out = out * self.state.mask.to(out.dtype).view(-1, 1, 1)
        return z + out


def bridge_layer_names(unet) -> list[str]:
    """Names of ``unet``'s self-attention modules (``...transformer_blocks.0.attn1``), in forward order, after
    checking each is the standard SD self-attention the bridge supports."""
    names = []
    for key in unet.attn_processors:
        name = key[: -len(".processor")]
        if not name.endswith("attn1"):
            continue
        attn = unet.get_submodule(name)
        bad = [what for what, on in (("a cross-attention at attn1 (only_cross_attention)", attn.is_cross_attention),
                                     ("group_norm", attn.group_norm is not None),
                                     ("spatial_norm", attn.spatial_norm is not None),
                                     ("norm_q / norm_k", attn.norm_q is not None or attn.norm_k is not None),
                                     ("residual_connection", attn.residual_connection),
                                     ("rescale_output_factor != 1", attn.rescale_output_factor != 1.0)) if on]
        if bad:
            raise NotImplementedError(f"{name} has {', '.join(bad)}; the DescriptiveEdit Attention Bridge supports the "
                                      "standard Stable Diffusion self-attention only")
        names.append(name)
    if not names:
        raise ValueError("the UNet has no self-attention (attn1) layers to bridge; DescriptiveEdit needs a UNet with "
                         "transformer blocks (CrossAttnDownBlock2D / CrossAttnUpBlock2D / a cross-attention mid block)")
    return names


def module_key(name: str) -> str:
    """``down_blocks.0.attentions.0.transformer_blocks.0.attn1`` -> a ``nn.ModuleDict`` key (no dots)."""
    return name.replace(".", "__")


def build_bridges(unet, names: list[str], lora_rank: int, lora_alpha: float | None, seed: int) -> nn.ModuleDict:
    """One zero-initialised :class:`AttentionBridge` per named self-attention of ``unet`` (float32, on ``unet``'s
    device); LoRA ``down`` weights drawn from ``torch.Generator().manual_seed(seed)``."""
    g = torch.Generator().manual_seed(seed)
    bridges = nn.ModuleDict()
    for name in names:
        attn = unet.get_submodule(name)
        bridges[module_key(name)] = AttentionBridge(attn.to_out[0].out_features, attn.to_q.out_features, attn.heads,
                                                    lora_rank, lora_alpha, g)
    return bridges.to(device=unet.device, dtype=torch.float32)


def attach(unet, ref_unet, bridges: nn.ModuleDict, names: list[str], state: BridgeState) -> None:
    """Install the processors: :class:`RefCacheProcessor` on ``ref_unet``'s and :class:`BridgeProcessor` on
    ``unet``'s named ``attn1`` modules (every other processor is kept). The two UNets must be structurally
    identical (same config)."""
    if dict(unet.config) != dict(ref_unet.config):
        raise ValueError("the Ref-UNet and the denoising UNet must be structurally identical (same config)")
    wanted = set(names)
    for model, make in ((ref_unet, lambda base, n: RefCacheProcessor(base, n, state)),
                        (unet, lambda base, n: BridgeProcessor(base, bridges[module_key(n)], n, state))):
        procs = {}
        for key, proc in model.attn_processors.items():
            name = key[: -len(".processor")]
            procs[key] = make(proc, name) if name in wanted else proc
        model.set_attn_processor(procs)
