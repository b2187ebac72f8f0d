"""Model cards (README.md in each bundled component folder): how it was trained, measured quality."""

from __future__ import annotations

import json
import math
import platform
from datetime import date
from pathlib import Path


# component -> (metric, comparison, bar, description)
BARS: dict[str, list[tuple[str, str, float, str]]] = {
    "clip": [
        ("image_to_caption_top1", ">=", 0.95, "image->caption top-1 among 64 held-out pairs"),
        ("zero_shot_color", ">=", 0.95, "zero-shot colour of a single object"),
        ("zero_shot_shape", ">=", 0.95, "zero-shot shape of a single object"),
    ],
    "vae": [
        ("psnr_db", ">=", 30.0, "reconstruction PSNR at 64x64 (dB)"),
        ("max_background_shift_levels", "<=", 2.0, "largest mean colour shift on a solid background (levels of 255)"),
    ],
    "unet": [("objects_right", ">=", 0.85, "requested objects drawn with the right colour and shape")],
    "unet_inpaint": [
        ("object_right", ">=", 0.85, "'a red star' in a mask: right colour and shape inside it"),
        ("background_l1", "<=", 0.05, "'background' fill: L1 inside the mask vs the true background"),
    ],
    "instruction_encoder": [],
    "unet_ip2p": [],  # a baseline: no bar, its numbers are for comparison
    # a new, small model (under 8M parameters, one training run): our own bar, 0.5, below the UNet's 0.85
    "dit": [("objects_right", ">=", 0.5, "requested objects drawn with the right colour and shape "
             "(our bar for a new, small model; the UNet's is 0.85)")],
    "region_predictor": [
        ("iou_remove", ">=", 0.80, "region IoU with the ground-truth mask: remove"),
        ("iou_local", ">=", 0.80, "region IoU: local (replace)"),
        ("iou_color", ">=", 0.80, "region IoU: color"),
        ("iou_size", ">=", 0.80, "region IoU: size"),
        ("iou_add", ">=", 0.60, "region IoU: add"),
        ("add_placed", ">=", 0.95, "add regions clear of every object and in the named area (rule placement; our bar)"),
        ("absent_no_edit", ">=", 0.95, "absent referents answered with no edit"),
        ("false_no_edit", "<=", 0.03, "real edits wrongly answered with no edit"),
    ],
}

DESCRIPTIONS = {
    "clip": "transformers CLIPModel (ViT 64x64 patch 4, 4-layer text tower, width 128), contrastive image-caption "
    "training on freshly rendered world scenes (a quarter single-object), captions with random size words, "
    "hard negatives with one object's shape or colour swapped; an auxiliary dense loss (a linear head, not "
    "shipped) classifies the shape under every projected patch feature, the features the region predictor reads.",
    "text_encoder": "CLIP's text tower as a CLIPTextModel: the Stable Diffusion text encoder.",
    "vae": "diffusers AutoencoderKL (16,32,64) 64x64x3 <-> 16x16x4, L1 + MSE + 1e-6 KL, EMA 0.999, batch 32; 40% zoomed-in or free windows, 10% background-only scenes (from step 1077 on).",
    "instruction_encoder": "transformers T5EncoderModel (4 layers, width 128), pre-trained as a T5 seq2seq "
    "from world instructions to their structured edit (as FLAN-T5 is instruction-tuned); only the encoder ships.",
    "unet": "diffusers UNet2DConditionModel (64,128,128), 4 input channels, v-prediction with min-SNR-5 "
    "weighting, 10% caption dropout for classifier-free guidance, EMA 0.999, conditioned on CLIP text states; "
    "from step 1431 on, the loss on latent cells with object pixels is weighted 5x.",
    "unet_inpaint": "diffusers UNet2DConditionModel, 9 input channels (latents, mask, masked-image latents), "
    "initialised from the text-to-image UNet with zero-initialised extra channels (as SD-inpainting); regions "
    "around objects asking for the object ('a red star') or its removal ('background'), half zoomed crops; "
    "from the fine-tune of 2026-11-24 on, one sample in five repaints the whole background around the objects "
    "('a white background', 'a gray to sky blue background'); from step 2073 of that fine-tune on, "
    "three object regions in ten are the object's own footprint grown 0-2 px (the region of a recolour or removal "
    "of a found object, filled edge to edge); loss weighted 5x inside the region.",
    "unet_ip2p": "InstructPix2Pix baseline: diffusers UNet2DConditionModel, 8 input channels (noisy latents + source "
    "latents), fine-tuned on world edit pairs conditioned on the instruction, as diffusers' train_instruct_pix2pix "
    "example (5% text, 5% image, 5% both dropped); run through StableDiffusionInstructPix2PixPipeline. The shipped "
    "weights start from the inpainting UNet (`--ip2p-init unet_inpaint`, recorded below as init): conv_in keeps its "
    "noisy-latent and masked-image channels (the latter times the VAE scaling factor) and drops the mask channel, so "
    "at initialisation it is the inpainting UNet told to keep every pixel; the latent cells the edit changes weigh "
    "more in the loss (`--ip2p-region-weight`, recorded below as region_weight; the training sample's mask, never "
    "used at inference). InstructPix2Pix's own init (`--ip2p-init unet`: the text-to-image UNet with zero-initialised "
    "source channels) and a higher learning rate for conv_in (`--conv-in-lr-scale`) are options; docs/results.md "
    "has the curves of all three. The shipped run was resumed once at a lower learning rate (the two commands below); "
    "the peak learning rate recorded is the last one's.",
    "dit": "miniature diffusion transformer, a whole diffusers StableDiffusion3Pipeline folder: SD3Transformer2DModel "
    "(MM-DiT, 6 joint text-image attention blocks, 4 heads x 32 = width 128, patch 2 on the VAE's 16x16x4 latents: "
    "64 image tokens), trained from scratch as a rectified flow (x_t = (1 - s) x_0 + s noise, s logit-normal as SD3) "
    "with the velocity target noise - x_0, 10% caption dropout for classifier-free guidance, the loss on latent cells "
    "with object pixels weighted 5x, EMA 0.999, batch 32; on the frozen bundled text encoder (both SD3 CLIP towers, "
    "text_encoder and text_encoder_2, are copies of it with an identity projection) and VAE (shift_factor 0). No T5: "
    "load with `StableDiffusion3Pipeline.from_pretrained(folder, text_encoder_3=None, tokenizer_3=None)`; trained "
    "with max_sequence_length 1 (the zero tokens standing for T5), so generate with `max_sequence_length=1` "
    "(`objects_right_default_sequence_length` below is the pipeline's default, 256).",
    "region_predictor": "seed 001 region predictor (cross-attention of CLIP patch features on instruction features: "
    "T5 encoder states and CLIP text tokens; self-attention, multi-scale token-wise MLP + sigmoid, pixel refinement), "
    "trained on text-image pairs only with the semantic alignment and CLIP losses plus a contrastive CLIP term "
    "(see training/region.py; `--fill proxy`). A presence head (absent referents -> no edit) is trained after, "
    "with the rest frozen, on labels the caption text implies (`--presence-only`). The metrics below use the "
    "editor's full rule (`Editor.region_from`): presence threshold, region threshold, snapping to colour "
    "segments (+1 px), one connected piece per referent (the one the bundled CLIP reads best as it), the CLIP "
    "referent check with relocation to the object proposal CLIP reads as the referent (verify threshold), "
    "shaping by edit type (scaled footprint / ring for size edits, circumscribed disc for replace).",
}

# how each component was trained, in order (the card shows them as "`a`, then `b`"); the default is one
# `regionedit train world-models --only NAME` run
TRAIN_COMMANDS = {
    "clip": ["regionedit train world-models --only clip --clip-shape-aux 0 --minutes M --out runs/wm",
             "regionedit train world-models --only clip --batch 64 --minutes M --out runs/wm_clipshape "
             "--export runs/wm/export"],
    "dit": ["regionedit train world-models --only dit --batch 32 --minutes M --out runs/wm"],
    "unet_ip2p": ["regionedit train world-models --only unet_ip2p --batch 32 --ip2p-init unet_inpaint "
                  "--ip2p-region-weight 5 --lr 1e-4 --max-steps 1579 --out runs/ip2p --export runs/ip2p/export",
                  "regionedit train world-models --only unet_ip2p --batch 32 --ip2p-init unet_inpaint "
                  "--ip2p-region-weight 5 --lr 3e-5 --max-steps 3349 --out runs/ip2p --export runs/ip2p/export"],
    "region_predictor": ["regionedit train region --out runs/region --minutes M",
                         "regionedit train region --out runs/region_presence --presence-only --absent-prob 0.35 "
                         "--batch 64 --lr 1e-3 --minutes M"],
}


# components whose folder is a whole pipeline: the card is the pipeline folder's README.md, the trained weights,
# their config and training_state.json are in this subfolder of it
WEIGHTS_SUBFOLDER = {"dit": "transformer"}


def training_state(location, component: str) -> dict:
    """A model folder's record of how ``component`` was trained (its ``training_state.json``, in the weights'
    subfolder for a pipeline component such as ``dit``; ``{}`` when absent)."""
    p = Path(location) / component / WEIGHTS_SUBFOLDER.get(component, "") / "training_state.json"
    return json.loads(p.read_text()) if p.exists() else {}


def train_commands(component: str) -> str:
    """The card's "reproduce / continue" line: the component's commands, each in backticks."""
    cmds = TRAIN_COMMANDS.get(component, [f"regionedit train world-models --only {component} --minutes M --out runs/wm"])
    return ", then ".join(f"`{c}`" for c in cmds)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file through a temporary sibling and a rename: a reader never sees half a card."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def passes(value: float, op: str, bar: float) -> bool:
    return value >= bar if op == ">=" else value <= bar


def write_card(folder: Path, component: str, metrics: dict, command: str) -> str:
    """Write ``folder/README.md`` for a component; returns the text. For a pipeline component
    (:data:`WEIGHTS_SUBFOLDER`) the training record, config and parameter count come from its weights' subfolder."""
    folder = Path(folder)
    sub = WEIGHTS_SUBFOLDER.get(component, "")
    weights = folder / sub
    state_p = weights / "training_state.json"
    state = json.loads(state_p.read_text()) if state_p.exists() else {}
    cfg_p = next((p for p in (weights / "config.json",) if p.exists()), None)
    n_params = None
    if (weights / "model.safetensors").exists() or (weights / "diffusion_pytorch_model.safetensors").exists():
        from safetensors import safe_open

        f = next(p for p in (weights / "model.safetensors", weights / "diffusion_pytorch_model.safetensors") if p.exists())
        with safe_open(f, "pt") as sf:
            n_params = sum(math.prod(sf.get_slice(k).get_shape()) for k in sf.keys())
    lines = [f"# shapes-64 / {component}", "", DESCRIPTIONS.get(component, ""), ""]
    lines += ["## Training", ""]
    lines += [f"- steps: {state.get('steps', '?')}", f"- CPU minutes (2 cores): {state.get('cpu_minutes', '?')}",
              f"- seed: {state.get('seed', '?')}", f"- batch: {state.get('batch', '?')}",
              *([f"- conv_in learning rate: {state['conv_in_lr_scale']}x the rest's"] if "conv_in_lr_scale" in state else []),
              *([f"- peak learning rate: {state['lr']:g}"] if "lr" in state else []),
              *([f"- initialised from: {state['init']} (`--ip2p-init {state['init']}`)"] if "init" in state else []),
              *([f"- loss weight of the edited latent cells: {state['region_weight']:g}"] if "region_weight" in state else []),
              f"- parameters: {n_params if n_params is not None else '?'} ({sub + ', ' if sub else ''}stored fp16)",
              f"- config: `{(sub + '/' if sub else '') + cfg_p.name if cfg_p else 'n/a'}` in this folder",
              "- data: rendered on the fly by `regionedit.world` (training seed); held-out evaluation seeds >= 10000",
              "- reproduce / continue: " + train_commands(component)]
    ft, fts = state.get("decoder_finetune"), []
    while ft and len(fts) < 5:  # a later decoder fine-tune keeps the earlier one's record under "earlier"
        fts.insert(0, ft)
        ft = ft.get("earlier")
    for ft in fts:  # SD's ft-MSE recipe: the encoder (the latent space every UNet was trained on) stays as it was
        lines += [f"- then a decoder-only fine-tune (encoder frozen, latents unchanged): {ft.get('steps', '?')} steps, "
                  f"{ft.get('cpu_minutes', '?')} CPU minutes, lr {ft.get('lr', '?')}, {ft.get('loss', '')}: "
                  f"`regionedit train world-models --only vae_decoder --minutes M --out runs/wm` (stage 2 of the VAE)"]
    cf = state.get("finetune") if component == "clip" else None
    if cf:  # continued from the weights above with the dense shape loss on the patch features
        lines += [f"- then a fine-tune of both towers with the auxiliary dense shape loss (weight {cf.get('shape_aux_weight', '?')}): "
                  f"{cf.get('steps', '?')} steps, {cf.get('cpu_minutes', '?')} CPU minutes, batch {cf.get('batch', '?')}"]
    earlier, depth = state.get("earlier_training"), 0
    while earlier and depth < 5:  # region_predictor: continued from an earlier predictor (on earlier frozen models)
        lines += [f"- continued from an earlier training (on the frozen models of its time): {earlier.get('steps', '?')} steps, "
                  f"{earlier.get('cpu_minutes', '?')} CPU minutes, batch {earlier.get('batch', '?')}"]
        earlier, depth = earlier.get("earlier_training"), depth + 1
    ph = state.get("presence_head")
    if ph:  # region_predictor: the presence head trained after, the rest frozen
        lines += [f"- then the presence head alone (the rest frozen): {ph.get('steps', '?')} steps, "
                  f"{ph.get('cpu_minutes', '?')} CPU minutes, batch {ph.get('batch', '?')}, "
                  f"absent share {ph.get('train_config', {}).get('absent_prob', '?')}"]
    lines += [""]
    lines += ["## Measured quality (held-out world data)", "", "| metric | value | bar | met |", "|---|---|---|---|"]
    bars = {m: (op, b, d) for m, op, b, d in BARS.get(component, [])}
    for k, v in metrics.items():
        if k in bars:
            op, b, d = bars[k]
            lines.append(f"| {d} (`{k}`) | {v:.4g} | {op} {b} | {'yes' if passes(v, op, b) else '**no**'} |")
        elif isinstance(v, float):
            lines.append(f"| `{k}` | {v:.4g} | | |")
        else:
            lines.append(f"| `{k}` | {v} | | |")
    lines += ["", f"Measured {date.today().isoformat()} on {platform.machine()} CPU by:", "", f"    {command}", ""]
    text = "\n".join(lines)
    write_text_atomic(folder / "README.md", text)
    return text


def card_metrics(folder: Path) -> dict[str, float]:
    """The numeric metrics of a model card written by :func:`write_card` (``folder/README.md``): ``{key: value}``
    from its "Measured quality" table (``{}`` when there is no card), e.g. to set a retrained folder beside
    the shipped one (``benchmarks/world_models.py --compare shapes-64``)."""
    import re

    card = Path(folder) / "README.md"
    if not card.exists():
        return {}
    out = {}
    for line in card.read_text().splitlines():
        m = re.match(r"^\|.*?`([A-Za-z0-9_]+)`\)?\s*\|\s*([-+0-9.eE]+|nan|inf)\s*\|", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out
